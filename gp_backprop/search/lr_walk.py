"""Which learning rates a candidate's fitness tries: a bracket around a starting lr that walks outward while its
best is at an edge (or everything diverged), so a rule is scored at its own step size, whatever its scale.

A rule's scale says nothing about its worth (``g/||g||_F`` trains best at a quarter of backprop's lr), so only one
global step size is factored out of a score: the walk moves one lr for all layers and all steps. Pure logic on
results: the scorer trains what it asks for, and benchmarks replay it on recorded trainings.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from evaluators.task import EvalResult

from gp_backprop.tuning import best_member

__all__ = ["LrWalk"]


@dataclass(frozen=True)
class LrWalk:
    """Factors of the search's lr: ``grid`` around the start first, then one ``step`` beyond the lowest or highest
    tried while that edge trained in full and is within ``tolerance`` of the best (a result a hurdle or a screen
    stopped is not worth a step; the better edge first), and down one step while no result trained in full and
    every one above the lowest diverged (unless all went non-finite at the same step: a rule whose values are NaN
    or Inf breaks whatever the lr), never past ``step ** reach`` either way (``reach`` 0: the grid alone)."""

    grid: tuple[float, ...] = (0.5, 1.0, 2.0)
    step: float = 2.0
    reach: int = 6
    tolerance: float = 0.01   # an edge this close to the best still walks on: one training's seed noise

    def _inside(self, factor: float) -> bool:
        """Within the reach, or a point of the bracket around the search's lr (which ``reach`` 0 keeps)."""
        return abs(math.log(factor) / math.log(self.step)) <= self.reach + 1e-9 or factor in self.grid

    def start(self, centre: float = 1.0) -> list[float]:
        """The first factors to try: the grid around ``centre`` (a parent's chosen factor, or 1), kept inside the
        walk's reach; the grid around 1 if none of it is."""
        factors = [centre * f for f in self.grid if self._inside(centre * f)]
        return factors or list(self.grid)

    def next(self, tried: Sequence[tuple[float, EvalResult]]) -> float | None:
        """The next factor to try after the (factor, result) pairs ``tried``, or None: the best is inside the range
        tried, or the next step would leave the reach."""
        if not self.reach:
            return None
        ordered = sorted(tried, key=lambda t: t[0])
        (low, lowest), (high, highest) = ordered[0], ordered[-1]
        results = [r for _, r in ordered]
        top = max((r.fitness for r in results if r.status == "ok"), default=None)
        if top is not None:
            # an edge that trained in full and is within seed noise of the best: the peak may lie beyond it
            edges = [(r.fitness, nxt) for r, nxt in ((highest, high * self.step), (lowest, low / self.step))
                     if r.status == "ok" and r.fitness >= top - self.tolerance and self._inside(nxt)]
            return max(edges)[1] if edges else None
        if all(r.status == "diverged" for r in results[1:]) and not _lr_proof(results):
            nxt = low / self.step   # too large above the lowest: go on down
            return nxt if self._inside(nxt) else None
        return None

    @staticmethod
    def best(tried: Sequence[tuple[float, EvalResult]]) -> int:
        """Index in ``tried`` of the result the candidate is scored by."""
        return best_member([r for _, r in tried])


def _lr_proof(results: Sequence[EvalResult]) -> bool:
    """Every run went non-finite (``evaluators.train``'s "non-finite ..." messages) at the same step: the rule's own
    values are NaN or Inf, and no smaller lr cures that (a finite blow-up, in contrast, shrinks with the lr)."""
    return all(r.status == "diverged" and r.message.startswith("non-finite") for r in results) \
        and len({r.steps for r in results}) == 1
