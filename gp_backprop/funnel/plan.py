"""The generalization funnel (Backprop Evolution §3, Table 1): re-train a finished search's top equations and the
controls on fresh seeds in each setup, each row at its own tuned learning rate, and collect the results per
(row, setup) cell (``stats`` compares them, ``table`` renders them).

Jobs go through the search's own worker machinery (``parallel.make_backend``): text and task out, results back,
faults recorded as statuses. Everything here is a pure function of the search record and the options, so a rerun
with the same seeds gives the same table.
"""
from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.funnel.setups import Setup
from gp_backprop.parallel import Backend
from gp_backprop.parallel.batch import run_all


@dataclass(frozen=True)
class Finalist:
    """A row of the funnel: an equation to re-test (a finalist of the search) or a control, with where it came from.

    ``lr_factor`` scales each setup's learning rate: the row's own tuned lr over the search's (1.0 untuned)."""

    equation: str
    latex: str
    key: str
    fitness: float = float("nan")   # search fitness (mean validation accuracy over its search seeds)
    run_id: str = ""                # its child run in the search, if any
    control: str = ""               # the control's name ("backprop (reference)", "g/||g||_F", ...); "" for a finalist
    lr_factor: float = 1.0
    found: str = ""                 # a control the search rediscovered: where ("#2 left(norm_fro(g), g)"), else ""
    search_lr: float = 0.0          # the lr its search kept (0: unknown, as for a control): its tuning grid's centre

    @property
    def name(self) -> str:
        return self.control or self.equation


@dataclass
class Cell:
    """One (row, setup): the results over seeds, in seed order."""

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
        return ", ".join(f"{k}: {v}" for k, v in sorted(Counter(r.status for r in self.results).items()))


@dataclass(frozen=True)
class Job:
    cid: int
    cell: int          # index into the cells list
    seed: int


def plan(rows: Sequence[Finalist], setups: Sequence[Setup], seeds: Sequence[int],
         factors: dict[tuple[str, str], float] | None = None) -> tuple[list[Cell], list[Job]]:
    """A cell per (setup, row), each row at its tuned lr factor for the setup's dataset (``factors[(key,
    dataset)]``, 1.0 if absent), and a job per (cell, seed)."""
    factors = factors or {}
    cells = [Cell(replace(f, lr_factor=factors.get((f.key, s.task.dataset), 1.0)), s) for s in setups for f in rows]
    jobs = [Job(i * len(seeds) + j, i, seed) for i in range(len(cells)) for j, seed in enumerate(seeds)]
    return cells, jobs


def job_task(cell: Cell, seed: int) -> TaskSpec:
    """The training of one seed of a cell: the setup's task at the row's own lr."""
    task = cell.setup.task
    return task.with_(seed=seed, lr=task.lr * cell.finalist.lr_factor)


def run(cells: list[Cell], jobs: list[Job], backend: Backend,
        on_done: Callable[[int, int], None] | None = None) -> None:
    """Train every job on a started ``backend``; results land in their cells in seed order."""
    texts = [(cells[j.cell].finalist.equation, job_task(cells[j.cell], j.seed)) for j in jobs]
    for job, result in zip(jobs, run_all(backend, texts, on_done)):
        cells[job.cell].results.append(result)


@dataclass(frozen=True)
class Summary:
    """What the table shows of one (row, setup); rebuilt from MLflow by ``report``."""

    finalist: Finalist
    label: str
    mean: float
    std: float
    accs: tuple[float, ...] = ()   # test accuracy (%) per seed, in seed order: the paired tests need them

    @classmethod
    def of(cls, cell: Cell) -> "Summary":
        return cls(cell.finalist, cell.setup.label, cell.mean, cell.std, tuple(cell.test_accs()))
