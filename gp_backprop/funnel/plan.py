"""The generalization funnel (Backprop Evolution §3, Table 1): re-train a finished search's top equations and the
backprop baseline on fresh seeds in each setup, and collect
the results per (equation, setup) cell (``table`` renders them).

Jobs go through the search's own worker machinery (``parallel.make_backend``): text and task out, results back,
faults recorded as statuses. Everything here is a pure function of the search record and the options, so a rerun
with the same seeds gives the same table.
"""
from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evaluators.task import EvalResult

from gp_backprop.config import ParallelConfig
from gp_backprop.funnel.setups import Setup
from gp_backprop.parallel import make_backend


@dataclass(frozen=True)
class Finalist:
    """An equation to re-test: its text, LaTeX and key, and where it came from in the search."""

    equation: str
    latex: str
    key: str
    fitness: float = float("nan")   # search fitness (validation accuracy with the search's seed)
    run_id: str = ""                # its child run in the search, if any
    baseline: bool = False
    name: str = ""                  # the baseline's seed name (space.reference), for plot legends


@dataclass
class Cell:
    """One (equation, setup): the results over seeds."""

    finalist: Finalist
    setup: Setup
    results: list[EvalResult] = field(default_factory=list)

    def test_accs(self) -> list[float]:
        return [100.0 * r.test_acc if r.status == "ok" else 0.0 for r in self.results]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.test_accs())

    @property
    def std(self) -> float:
        accs = self.test_accs()
        return statistics.stdev(accs) if len(accs) > 1 else 0.0

    def val_curve(self) -> list[float]:
        """Mean validation accuracy per epoch over the seeds that trained (shorter runs end the curve)."""
        curves = [r.val_curve for r in self.results if r.val_curve]
        n = min((len(c) for c in curves), default=0)
        return [statistics.fmean(c[e] for c in curves) for e in range(n)]

    def statuses(self) -> str:
        counts = Counter(r.status for r in self.results)
        return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


@dataclass(frozen=True)
class Job:
    cid: int
    cell: int          # index into the cells list
    seed: int


def plan(finalists: Sequence[Finalist], setups: Sequence[Setup], seeds: Sequence[int]) -> tuple[list[Cell], list[Job]]:
    cells = [Cell(f, s) for s in setups for f in finalists]
    jobs = [Job(i * len(seeds) + j, i, seed) for i in range(len(cells)) for j, seed in enumerate(seeds)]
    return cells, jobs


def run(cells: list[Cell], jobs: list[Job], parallel: ParallelConfig, function: str, timeout: float,
        on_done: Callable[[int, int], None] | None = None) -> None:
    """Train every job, keeping every worker busy; results land in their cells in seed order."""
    backend = make_backend(parallel.backend, function, cells[0].setup.task, workers=parallel.workers,
                           timeout=timeout, scheduler=parallel.scheduler)
    backend.start()
    results: dict[int, EvalResult] = {}
    pending = list(reversed(jobs))
    by_cid = {j.cid: j for j in jobs}
    try:
        while len(results) < len(jobs):
            while pending and backend.running() < backend.capacity():
                job = pending.pop()
                cell = cells[job.cell]
                backend.submit(job.cid, cell.finalist.equation, cell.setup.task.with_(seed=job.seed))
            for done in backend.wait(1.0):
                results[done.cid] = done.result
                if on_done is not None:
                    on_done(len(results), len(jobs))
    finally:
        backend.close()
    for cid in sorted(results):
        cells[by_cid[cid].cell].results.append(results[cid])


@dataclass(frozen=True)
class Summary:
    """What the table shows of one (equation, setup); rebuilt from MLflow by ``report``."""

    finalist: Finalist
    label: str
    mean: float
    std: float

    @classmethod
    def of(cls, cell: Cell) -> "Summary":
        return cls(cell.finalist, cell.setup.label, cell.mean, cell.std)
