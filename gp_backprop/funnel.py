"""The generalization funnel (Backprop Evolution §3, Table 1): re-train a finished search's top equations and the
backprop baseline on fresh seeds in each setup, and tabulate mean ± std test accuracy, Table-1 style.

Jobs go through the search's own worker machinery (``parallel.make_backend``): text and task out, results back,
faults recorded as statuses. Everything here is a pure function of the search record and the options, so a rerun
with the same seeds gives the same table.
"""
from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evaluators.task import EvalResult

from gp_backprop.config import ParallelConfig
from gp_backprop.setups import Setup

BOLD_MARGIN = 0.1   # percentage points above the baseline, as the paper's bold (reference §4)


@dataclass(frozen=True)
class Finalist:
    """An equation to re-test: its text, LaTeX and key, and where it came from in the search."""

    equation: str
    latex: str
    key: str
    fitness: float = float("nan")   # search fitness (validation accuracy with the search's seed)
    run_id: str = ""                # its child run in the search, if any
    baseline: bool = False


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
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
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
    from gp_backprop.parallel import make_backend

    backend = make_backend(parallel, function, cells[0].setup.task, timeout)
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


def marked(entry: Summary | Cell, baseline: Summary | Cell) -> bool:
    return not entry.finalist.baseline and entry.mean >= baseline.mean + BOLD_MARGIN


def _grid(rows: Sequence[Summary]) -> tuple[list[Finalist], list[str], dict[tuple[str, str], Summary]]:
    finalists, labels, grid = [], [], {}
    for r in rows:
        if r.finalist not in finalists:
            finalists.append(r.finalist)
        if r.label not in labels:
            labels.append(r.label)
        grid[(r.finalist.key, r.label)] = r
    return finalists, labels, grid


def table(rows: Sequence[Summary | Cell], markdown: bool = False) -> str:
    """Rows: the baseline, then each equation; columns: setup x optimizer; mean ± std test accuracy (%) over seeds.
    Entries at least 0.1 points above the baseline are marked (* in text, bold in markdown)."""
    finalists, labels, grid = _grid([r if isinstance(r, Summary) else Summary.of(r) for r in rows])
    base = next(f for f in finalists if f.baseline)

    def entry(f: Finalist, label: str) -> str:
        c = grid[(f.key, label)]
        text = f"{c.mean:.2f} ± {c.std:.2f}"
        if marked(c, grid[(base.key, label)]):
            return f"**{text}**" if markdown else f"{text} *"
        return text

    names = [("baseline " if f.baseline else "") + f.equation for f in finalists]
    if markdown:
        lines = ["| equation | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        lines += [f"| `{n}` | " + " | ".join(entry(f, lb) for lb in labels) + " |" for n, f in zip(names, finalists)]
        return "\n".join(lines)
    width = max(len(n) for n in names)
    lines = [f"{'equation':<{width}}  " + "  ".join(f"{lb:<17}" for lb in labels)]
    lines += [f"{n:<{width}}  " + "  ".join(f"{entry(f, lb):<17}" for lb in labels) for n, f in zip(names, finalists)]
    return "\n".join(lines)


def write_csv(cells: Sequence[Cell], path: str | Path) -> None:
    """One row per (equation, setup): the text and LaTeX, the numbers, each seed's test accuracy and the statuses."""
    base = {c.setup.label: c for c in cells if c.finalist.baseline}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["setup", "optimizer", "equation", "latex", "key", "baseline", "test_acc_mean", "test_acc_std",
                    "marked", "seeds_test_acc", "statuses", "search_fitness"])
        for c in cells:
            w.writerow([c.setup.name, c.setup.optimizer, c.finalist.equation, c.finalist.latex, c.finalist.key,
                        c.finalist.baseline, f"{c.mean:.4f}", f"{c.std:.4f}", marked(c, base[c.setup.label]),
                        " ".join(f"{a:.4f}" for a in c.test_accs()), c.statuses(), c.finalist.fitness])


def plot_curves(cells: Sequence[Cell], label: str, path: str | Path, top: int = 3) -> None:
    """Mean validation curves of the top equations against the baseline in one setup."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [c for c in cells if c.setup.label == label]
    chosen = [c for c in chosen if c.finalist.baseline] + [c for c in chosen if not c.finalist.baseline][:top]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in chosen:
        curve = c.val_curve()
        ax.plot(range(1, len(curve) + 1), curve, lw=2.2 if c.finalist.baseline else 1.4,
                color="black" if c.finalist.baseline else None,
                label=("backprop (baseline)" if c.finalist.baseline else c.finalist.equation)[:60])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (mean over seeds)")
    ax.set_title(f"{label}: {chosen[0].setup.description}"[:90], fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
