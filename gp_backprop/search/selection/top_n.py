"""The paper's selection (Alber et al. 2018, §3.2): with probability p a parent uniformly from the N best
equations found so far, otherwise uniformly from the rest of the population."""
from __future__ import annotations

from collections.abc import Sequence
from random import Random
from typing import Any


def select_top_n(rng: Random, ranked: Sequence[Any], space: Any) -> Any:
    n = space.population
    # While the population holds at most N equations there is no "rest": every pick is from the top.
    if len(ranked) <= n or rng.random() < space.p_top:
        return ranked[rng.randrange(min(n, len(ranked)))]
    return ranked[n + rng.randrange(len(ranked) - n)]
