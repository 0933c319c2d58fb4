"""Tournament selection, as DEAP's ``tools.selTournament``: the fittest of ``space.tournament_size`` entries drawn
uniformly with replacement from the whole population (the first drawn wins a tie)."""
from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from random import Random
from typing import Any


def select_tournament(rng: Random, ranked: Sequence[Any], space: Any) -> Any:
    # selTournament's own two lines (selRandom, then max), drawing from the controller's generator rather than the
    # global ``random`` module it is hard-wired to, so the search stays reproducible and resumable from its state.
    aspirants = [rng.choice(ranked) for _ in range(space.tournament_size)]
    return max(aspirants, key=attrgetter("fitness"))
