"""``python -m gp_backprop.report --search RUN_ID``: a search's summary, fitness plot and funnel table, rebuilt from
MLflow alone."""
from __future__ import annotations

import sys
from pathlib import Path

from gp_backprop import funnel
from gp_backprop.cli import OneLineParser, fail
from gp_backprop.render import plot_progress, summary_table, write_csv
from gp_backprop.tracking import DEFAULT_URI, RecordError, client, find_search, search_rows


def main(argv: list[str] | None = None) -> int:
    """``python -m gp_backprop.report --search RUN_ID``: the search summary, the fitness plot and the funnel table,
    regenerated from MLflow alone (no retraining, no checkpoint needed)."""
    p = OneLineParser(prog="python -m gp_backprop.report", allow_abbrev=False, description=main.__doc__)
    p.add_argument("--search", required=True, help="the search's parent run id, or its name (newest search)")
    p.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow store holding the search ({DEFAULT_URI})")
    p.add_argument("--top", type=int, default=10, help="rows of the search summary (default 10)")
    p.add_argument("--out", default=None, help="folder for summary.md, fitness.png, funnel.md "
                                               "(default mlruns/reports/<run id>)")
    args = p.parse_args(argv)
    try:
        mc = client(args.tracking_uri)
        run = find_search(mc, args.search)
    except RecordError as exc:
        fail("report", str(exc))
    rows, ref, fitness, statuses = search_rows(mc, run, args.top)
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
    plot_progress(fitness, ref.score if ref else None, out / "fitness.png", title=run.info.run_name or "",
                  reference_name=reference)
    print(text)
    found = funnel.read_funnel(mc, run)
    if found is not None:
        funnel_run, entries = found
        (out / "funnel.md").write_text(funnel.table(entries, markdown=True) + "\n", encoding="utf-8")
        seeds = funnel_run.data.params.get("seeds", "")
        print(f"funnel run {funnel_run.info.run_id} (setups {funnel_run.data.params.get('setups')}, seeds {seeds}): "
              f"{funnel.legend(len(seeds.split()))}\n")
        print(funnel.table(entries))
    print(f"\nsaved: {out}/summary.md, hall_of_fame.csv, fitness.png" + (", funnel.md" if found else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
