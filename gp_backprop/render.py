"""How a search looks on paper: hall-of-fame rows as CSV and as a table, and best/median fitness over evaluations.

Pure rendering of plain rows and numbers (the search and ``report`` both use it). The paper reran its top equations
against backprop (reference §2), so the table and the plot always show the reference seed as well.
"""
from __future__ import annotations

import bisect
import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Row", "write_csv", "fitness_curves", "plot_progress", "plot_equations", "mathtext", "summary_table",
           "duration"]


@dataclass(frozen=True)
class Row:
    rank: int
    val_acc: float
    test_acc: float
    status: str
    equation: str
    latex: str
    key: str
    evaluation: int           # the evaluation (1-based) that found it
    times_proposed: int       # 1 + cache hits
    fitness: float = float("nan")  # mean validation accuracy over its seeds (val_acc is its first seed's)
    std: float = 0.0
    seeds: int = 1
    lr: float = 0.0           # the lr it chose from the grid (0: the task's)

    @property
    def score(self) -> float:
        return self.val_acc if math.isnan(self.fitness) else self.fitness

    def shown(self) -> str:
        """``mean ± std (n)``, or the one value when it trained on one seed."""
        return f"{self.score:.4f} ± {self.std:.4f} ({self.seeds})" if self.seeds > 1 else f"{self.score:.4f}"


def write_csv(rows: Sequence[Row], path: str | Path) -> None:
    fields = list(Row.__dataclass_fields__)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for r in rows:
            w.writerow([getattr(r, name) for name in fields])


def fitness_curves(fitness: Sequence[float], top: int = 0,
                   points: int = 400) -> tuple[list[int], list[float], list[float], list[float]]:
    """Evaluation counts, and after each: the best fitness, the population's median, and the median of its ``top``
    best (the selection pool; empty if ``top`` is 0), sampled at about ``points`` counts."""
    n = len(fitness)
    step = max(1, n // points)
    xs: list[int] = []
    best: list[float] = []
    median: list[float] = []
    top_median: list[float] = []
    ordered: list[float] = []  # ascending

    def med(values: Sequence[float]) -> float:
        m = len(values)
        return values[m // 2] if m % 2 else (values[m // 2 - 1] + values[m // 2]) / 2

    for i, f in enumerate(fitness, 1):
        bisect.insort(ordered, f)
        if i % step == 0 or i == n:
            xs.append(i)
            best.append(ordered[-1])
            median.append(med(ordered))
            if top:
                top_median.append(med(ordered[-top:]))
    return xs, best, median, top_median


def plot_progress(fitness: Sequence[float], reference: float | None, path: str | Path, title: str = "",
                  reference_name: str = "backprop", top: int = 0) -> None:
    """PNG of the best and median fitness over evaluations (and the median of the top ``top``), with the reference
    seed's fitness as a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in the tracking thread

    xs, best, median, top_median = fitness_curves(fitness, top)
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(xs, best, label="best so far")
    if top_median:
        ax.plot(xs, top_median, label=f"median of the top {top}")
    ax.plot(xs, median, label="median of the population")
    if reference is not None:
        ax.axhline(reference, color="k", linestyle="--", linewidth=1, label=f"{reference_name} seed ({reference:.4f})")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("fitness (validation accuracy)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


_DOUBLE_SUPERSCRIPT = re.compile(r"((?:\\[A-Za-z]+|[A-Za-z])(?:\^\{[^{}]*\}|_\{[^{}]*\})+)(?=\^)")


def mathtext(tex: str) -> str:
    """``tex`` in the subset matplotlib's mathtext parses: ``\\leq`` for ``\\le``, and a braced base for a second
    superscript (``h^{p}^{2}`` -> ``{h^{p}}^{2}``, which TeX itself refuses too)."""
    tex = re.sub(r"\\(le|ge)(?![A-Za-z])", r"\\\1q", tex)
    return _DOUBLE_SUPERSCRIPT.sub(r"{\1}", tex)


def plot_equations(rows: Sequence[Row], reference: Row | None, path: str | Path,
                   reference_name: str = "backprop") -> None:
    """PNG of the hall of fame's equations typeset with matplotlib's mathtext, one line each: rank, fitness (mean
    validation accuracy), equation; the reference seed's line last."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lines = [(f"{r.rank}.", f"{r.score:.4f}", r.latex) for r in rows]
    if reference is not None:
        lines.append((f"#{reference.rank}", f"{reference.score:.4f}", reference.latex))
    fig = Figure(figsize=(10, 0.85 * len(lines) + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    fig.text(0.01, 1 - 0.25 / fig.get_figheight(), "rank   fitness   equation", fontsize=11, weight="bold", va="top")
    for i, (rank, acc, tex) in enumerate(lines):
        y = 1 - (0.6 + 0.85 * i + 0.4) / fig.get_figheight()
        name = f"   ({reference_name} seed)" if reference is not None and i == len(lines) - 1 else ""
        fig.text(0.01, y, f"{rank:>5}   {acc}   ${mathtext(tex)}${name}", fontsize=12, va="center")
    fig.savefig(path, bbox_inches="tight", pad_inches=0.2)


def summary_table(rows: Sequence[Row], ref: Row | None, reference_name: str) -> str:
    """The top equations against the reference seed, as aligned text: fitness as mean ± std (seeds), the lr each
    chose, test accuracy of its first seed."""
    out = io.StringIO()
    out.write(f"{'rank':>6}  {'fitness (val acc)':>24}  {'lr':>7}  {'test acc':>8}  {'vs ' + reference_name:>12}  "
              "equation\n")
    for r in rows:
        delta = f"{r.score - ref.score:+.4f}" if ref is not None else "n/a"
        out.write(f"{r.rank:>6}  {r.shown():>24}  {r.lr:7.4g}  {r.test_acc:8.4f}  {delta:>12}  {r.equation}\n")
    if ref is not None:
        out.write(f"{'#' + str(ref.rank):>6}  {ref.shown():>24}  {ref.lr:7.4g}  {ref.test_acc:8.4f}  "
                  f"{'(reference)':>12}  {ref.equation}   <- {reference_name} seed\n")
    return out.getvalue()


def duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"
