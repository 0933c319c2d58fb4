"""A rule's learning rate, tuned on validation: a log grid around a starting lr, a few seeds per point, the best mean
validation accuracy wins (ties: lower mean validation loss).

A search tunes its reference rule this way before it starts, so that candidates are measured against backprop at its
best step size, not at an arbitrary one; the funnel tunes every row and control the same way. Results are cached
per (rule, task, grid) in a JSON file, so a resumed search and the funnel reuse them.
"""
from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.parallel.base import Backend
from gp_backprop.parallel.batch import run_all

__all__ = ["TuningRow", "Tuning", "lr_grid", "tune", "tune_cached", "tuning_seeds", "best_member"]


def lr_grid(lr: float, points: int, factor: float = 2.0) -> list[float]:
    """``points`` learning rates ``factor`` apart around ``lr`` (lr itself included; one more point above it than
    below when ``points`` is even, since the untuned lr is more often too small than too large)."""
    below = (points - 1) // 2
    return [lr * factor ** (k - below) for k in range(points)]


def tuning_seeds(task: TaskSpec, n: int) -> list[int]:
    """The seeds a rule is tuned on: the task's own seed first, then seeds the funnel never tests on."""
    return [task.seed] + [task.seed + 1000 + i for i in range(n - 1)]


def _rank_key(r: EvalResult) -> tuple[float, float]:
    return (r.fitness, -r.val_loss if r.status in ("ok", "hurdle") else float("-inf"))


def best_member(results: Sequence[EvalResult]) -> int:
    """Index of the best of several trainings: highest fitness, then lowest validation loss, then the first."""
    return max(range(len(results)), key=lambda i: (*_rank_key(results[i]), -i))


@dataclass(frozen=True)
class TuningRow:
    lr: float
    mean: float                  # mean validation accuracy over seeds (fitness: 0 for diverged seeds)
    std: float
    val_loss: float              # mean final validation loss over the seeds that trained
    accs: tuple[float, ...]
    statuses: tuple[str, ...]


@dataclass(frozen=True)
class Tuning:
    """A tuning table: one row per grid point, and the winner."""

    rule: str                    # the equation text ("" for plain autograd)
    rows: tuple[TuningRow, ...]
    seeds: tuple[int, ...]

    @property
    def best(self) -> TuningRow:
        return max(self.rows, key=lambda r: (r.mean, -r.val_loss))

    @property
    def at_edge(self) -> bool:
        """The winner is the smallest or largest lr tried: the grid may not contain the optimum."""
        return self.best.lr in (self.rows[0].lr, self.rows[-1].lr)

    def table(self) -> str:
        out = [f"{'lr':>9}  {'val acc (mean ± std)':>20}  {'val loss':>8}  statuses"]
        for r in self.rows:
            mark = "  <- best" if r is self.best else ""
            status = ", ".join(f"{s} {r.statuses.count(s)}" for s in dict.fromkeys(r.statuses))
            out.append(f"{r.lr:9.4g}  {r.mean:12.4f} ± {r.std:.4f}  {r.val_loss:8.4f}  {status}{mark}")
        if self.at_edge:
            out.append("the best lr is at the edge of the grid; widen it (fitness.tune_points) to be sure")
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Tuning":
        rows = tuple(TuningRow(r["lr"], r["mean"], r["std"], r["val_loss"], tuple(r["accs"]), tuple(r["statuses"]))
                     for r in d["rows"])
        return cls(d["rule"], rows, tuple(d["seeds"]))


def tune(rule: str | None, task: TaskSpec, backend: Backend, points: int, factor: float, seeds: int,
         on_done: Callable[[int, int], None] | None = None) -> Tuning:
    """Train ``rule`` at every lr of ``lr_grid(task.lr, points, factor)`` on ``seeds`` seeds (in full: no hurdle)."""
    lrs = lr_grid(task.lr, points, factor)
    seed_list = tuning_seeds(task, seeds)
    jobs = [(rule, task.with_(lr=lr, seed=s, hurdle_epoch=0)) for lr in lrs for s in seed_list]
    results = run_all(backend, jobs, on_done)
    rows = []
    for i, lr in enumerate(lrs):
        rs = results[i * len(seed_list):(i + 1) * len(seed_list)]
        accs = tuple(r.fitness for r in rs)
        losses = [r.val_loss for r in rs if r.status == "ok"]
        rows.append(TuningRow(lr, statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0,
                              statistics.fmean(losses) if losses else float("inf"), accs,
                              tuple(r.status for r in rs)))
    return Tuning(rule or "", tuple(rows), tuple(seed_list))


def cache_key(rule: str | None, task: TaskSpec, points: int, factor: float, seeds: int) -> str:
    spec = {"rule": rule or "", "task": task.to_dict(), "points": points, "factor": factor,
            "seeds": seeds}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def tune_cached(folder: str | Path, rule: str | None, task: TaskSpec, backend: Backend, points: int, factor: float,
                seeds: int, on_done: Callable[[int, int], None] | None = None) -> tuple[Tuning, bool]:
    """``tune``, or the table saved in ``folder`` for the same rule, task and grid. Returns (table, from cache)."""
    path = Path(folder) / f"{cache_key(rule, task, points, factor, seeds)}.json"
    if path.exists():
        try:
            return Tuning.from_dict(json.loads(path.read_text(encoding="utf-8"))), True
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is only a cache miss: tune again and overwrite it
    table = tune(rule, task, backend, points, factor, seeds, on_done)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table.to_dict()), encoding="utf-8")
    tmp.replace(path)
    return table, False
