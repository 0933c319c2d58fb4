"""Each funnel row at its own learning rate: every finalist and control is tuned on validation (``gp_backprop.tuning``)
for each dataset of the funnel, with the search's grid around the search's tuned lr, so that no row wins or loses by
its step size. Setups of one dataset share the row's lr (A3 tests whether it carries over to longer training)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from evaluators.task import TaskSpec

from gp_backprop.funnel.plan import Finalist
from gp_backprop.funnel.setups import Setup
from gp_backprop.parallel import Backend
from gp_backprop.tuning import Tuning, tune_cached

__all__ = ["tune_rows"]


def tune_rows(rows: Sequence[Finalist], setups: Sequence[Setup], task: TaskSpec, center: float, backend: Backend,
              grid: tuple[int, float, int], folder: str | Path,
              on_done: Callable[[int, int], None] | None = None) -> tuple[dict[tuple[str, str], float],
                                                                         dict[tuple[str, str], Tuning]]:
    """``(factors, tables)``: for each (row key, dataset) the row's tuned lr over ``task.lr`` (the lr the setups
    scale from) and its tuning table. ``grid`` is (points, factor, seeds), around the lr the row's search kept
    (``Finalist.search_lr``: a rule's own lr may lie far from backprop's) or else ``center``, the search's tuned lr."""
    points, factor, seeds = grid
    factors: dict[tuple[str, str], float] = {}
    tables: dict[tuple[str, str], Tuning] = {}
    for dataset in dict.fromkeys(s.task.dataset for s in setups):
        base = task.with_(dataset=dataset, hurdle_epoch=0)
        for row in rows:
            table, _ = tune_cached(folder, row.equation, base.with_(lr=row.search_lr or center), backend, points,
                                   factor, seeds, on_done)
            factors[(row.key, dataset)] = table.best.lr / task.lr
            tables[(row.key, dataset)] = table
    return factors, tables
