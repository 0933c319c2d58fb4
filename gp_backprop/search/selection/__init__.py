"""Parent selection schemes, by name (``space.selection``): each is ``select(rng, ranked, space) -> entry``.

``ranked`` is the population sorted best first (``Entry.rank_key``); ``rng`` is the controller's own
``random.Random``, so a search is reproducible from its seed (STYLE §8). A new scheme is one file and one line here.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from random import Random
from typing import Any

from gp_backprop.search.selection.top_n import select_top_n
from gp_backprop.search.selection.tournament import select_tournament

Select = Callable[[Random, Sequence[Any], Any], Any]

SELECTIONS: dict[str, Select] = {
    "top_n": select_top_n,            # the paper's rule (§3.2)
    "tournament": select_tournament,  # DEAP tools.selTournament
}

__all__ = ["SELECTIONS", "Select", "select_top_n", "select_tournament"]
