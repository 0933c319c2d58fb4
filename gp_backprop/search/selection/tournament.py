"""Tournament selection through DEAP's ``tools.selTournament``: the fittest of ``space.tournament_size`` entries
drawn uniformly with replacement from the whole population."""
from __future__ import annotations

from collections.abc import Sequence
from random import Random
from typing import Any

from deap import tools
from deap.tools import selection as _deap_selection


def select_tournament(rng: Random, ranked: Sequence[Any], space: Any) -> Any:
    # selTournament draws from the global ``random`` module. Point DEAP's reference at the controller's own
    # generator for this call, so the search stays reproducible and resumable from its recorded state.
    saved = _deap_selection.random
    _deap_selection.random = rng
    try:
        return tools.selTournament(ranked, 1, space.tournament_size, fit_attr="fitness")[0]
    finally:
        _deap_selection.random = saved
