"""What a search shows at the end: the hall of fame (CSV and a table) and best/median fitness over evaluations.

The paper reran its top equations against backprop (reference §2), so the table and the plot always show the
reference seed (backprop by default), which every search trains first.
"""
from __future__ import annotations

import bisect
import csv
import io
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import primitives as P
from evaluators.task import STATUSES

from gp_backprop.controller import Controller, Entry

__all__ = ["Row", "hall_of_fame", "write_csv", "fitness_curves", "plot_progress", "summary_table", "print_summary"]


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


def _row(rank: int, e: Entry, ctl: Controller) -> Row:
    return Row(rank, e.result.val_acc, e.result.test_acc, e.result.status, e.cand.text,
               P.latex(P.parse(e.cand.text, ctl.pset)), e.cand.key, e.index + 1, 1 + ctl.hits.get(e.cand.key, 0))


def hall_of_fame(ctl: Controller, k: int) -> tuple[list[Row], Row | None]:
    """The top ``k`` entries, and the reference seed's row (rank = its place in the population), if trained."""
    rows = [_row(i + 1, e, ctl) for i, e in enumerate(ctl.ranked[:k])]
    ref = ctl.reference()
    ref_row = None
    if ref is not None:
        ref_row = _row(ctl.ranked.index(ref) + 1, ref, ctl)
    return rows, ref_row


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


def summary_table(rows: Sequence[Row], ref: Row | None, reference_name: str) -> str:
    """The top equations against the reference seed, as aligned text."""
    out = io.StringIO()
    out.write(f"{'rank':>6}  {'val acc':>7}  {'test acc':>8}  {'vs ' + reference_name:>12}  equation\n")
    for r in rows:
        delta = f"{r.val_acc - ref.val_acc:+.4f}" if ref is not None else "n/a"
        out.write(f"{r.rank:>6}  {r.val_acc:7.4f}  {r.test_acc:8.4f}  {delta:>12}  {r.equation}\n")
    if ref is not None:
        out.write(f"{'#' + str(ref.rank):>6}  {ref.val_acc:7.4f}  {ref.test_acc:8.4f}  {'(reference)':>12}  "
                  f"{ref.equation}   <- {reference_name} seed\n")
    return out.getvalue()


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def print_summary(cfg: Any, outcome: Any, file: Any = None) -> None:
    """The end-of-search report: counts, the top equations against the reference seed, and where to look."""
    file = file if file is not None else sys.stdout
    ctl = outcome.controller
    statuses = Counter(e.result.status for e in ctl.population)
    print(f"\n{cfg.name}: {outcome.status} after {len(ctl.population)} evaluations (+{ctl.cache_hits} cache hits) "
          f"in {_duration(outcome.elapsed)}; this session {outcome.evals_per_min:.0f} evals/min on "
          f"{outcome.workers} workers, utilization {outcome.utilization:.2f}", file=file)
    print("statuses: " + ", ".join(f"{s} {statuses.get(s, 0)}" for s in STATUSES), file=file)
    if ctl.inflight:
        print(f"{len(ctl.inflight)} candidates were in flight; --resume trains them", file=file)
    rows, ref = hall_of_fame(ctl, min(cfg.tracking.hall_of_fame, 10))
    print("\n" + summary_table(rows, ref, cfg.space.reference), file=file)
    if cfg.tracking.enabled and outcome.run_id:
        print(f"MLflow: experiment {cfg.name!r}, parent run {outcome.run_id} ({len(ctl.population)} child runs; "
              "hall_of_fame.csv and fitness.png are its artifacts)", file=file)
        if cfg.tracking.uri.startswith(("http://", "https://")):
            print(f"  open {cfg.tracking.uri.rstrip('/')}/#/experiments/{outcome.experiment_id}/runs/"
                  f"{outcome.run_id}", file=file)
        else:
            print(f"  mlflow ui --backend-store-uri {cfg.tracking.uri} --host 127.0.0.1   "
                  "# then open http://127.0.0.1:5000", file=file)
        if outcome.tracking_failures:
            print(f"  {outcome.tracking_failures} MLflow writes failed; --resume writes the missing runs", file=file)
    print(f"Checkpoint: {cfg.run_dir / 'checkpoint.json'} (continue with --resume --name {cfg.name}"
          f"{'' if outcome.status == 'interrupted' else ' --max-evals N'})", file=file)


def main(argv: list[str] | None = None) -> int:
    """``python -m gp_backprop.report --search RUN_ID``: the search summary, the fitness plot and the funnel table,
    regenerated from MLflow alone (no retraining, no checkpoint needed)."""
    from gp_backprop import funnel, records
    from gp_backprop.cli import OneLineParser, fail

    p = OneLineParser(prog="python -m gp_backprop.report", allow_abbrev=False, description=main.__doc__)
    p.add_argument("--search", required=True, help="the search's parent run id, or its name (newest search)")
    p.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db", help="MLflow store holding the search")
    p.add_argument("--top", type=int, default=10, help="rows of the search summary (default 10)")
    p.add_argument("--out", default=None, help="folder for summary.md, fitness.png, funnel.md "
                                               "(default mlruns/reports/<run id>)")
    args = p.parse_args(argv)
    try:
        mc = records.client(args.tracking_uri)
        run = records.find_search(mc, args.search)
    except records.RecordError as exc:
        fail("report", str(exc))
    rows, ref, fitness, statuses = records.search_rows(mc, run, args.top)
    reference = run.data.params.get("space.reference", "backprop")
    out = Path(args.out or Path("mlruns") / "reports" / run.info.run_id)
    out.mkdir(parents=True, exist_ok=True)
    head = (f"{run.info.run_name} (run {run.info.run_id}, experiment id {run.info.experiment_id}): "
            f"{len(fitness)} evaluations on {run.data.params.get('task.dataset')} / "
            f"{run.data.params.get('task.model.arch')}, {run.data.params.get('task.epochs')} epochs\n"
            "statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))
    text = head + "\n\n" + summary_table(rows, ref, reference)
    (out / "summary.md").write_text("```\n" + text + "```\n", encoding="utf-8")
    write_csv(rows, out / "hall_of_fame.csv")
    plot_progress(fitness, ref.val_acc if ref else None, out / "fitness.png", title=run.info.run_name or "",
                  reference_name=reference)
    print(text)
    found = records.read_funnel(mc, run)
    if found is not None:
        funnel_run, entries = found
        (out / "funnel.md").write_text(funnel.table(entries, markdown=True) + "\n", encoding="utf-8")
        print(f"funnel run {funnel_run.info.run_id} (setups {funnel_run.data.params.get('setups')}, seeds "
              f"{funnel_run.data.params.get('seeds')}): test accuracy (%), mean ± std; * = at least "
              f"{funnel.BOLD_MARGIN} points above the baseline\n")
        print(funnel.table(entries))
    print(f"\nsaved: {out}/summary.md, hall_of_fame.csv, fitness.png" + (", funnel.md" if found else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
