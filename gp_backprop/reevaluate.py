"""``python -m gp_backprop.reevaluate --search RUN_ID_OR_NAME``: the generalization funnel of Backprop Evolution
(Table 1): re-train a finished search's top equations and the backprop baseline on fresh seeds in setups A1, A2, A3
(and B1 for WRN searches), print the table, save it as markdown and CSV, and log it to MLflow under the search."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from evaluators import DataError

from gp_backprop import funnel
from gp_backprop.cli import OneLineParser, check_workers, fail, positive
from gp_backprop.config import ParallelConfig, parse_duration
from gp_backprop.funnel import SetupError, fresh_seeds, input_info, setups, task_from_params
from gp_backprop.parallel import BACKENDS, BackendError
from gp_backprop.search import CheckpointError, SearchLock
from gp_backprop.tracking import DEFAULT_URI, RecordError, client, find_search

PROG = "reevaluate"


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m gp_backprop.reevaluate", allow_abbrev=False,
                      description="Re-test a search's best equations on bigger models and longer training.")
    p.add_argument("--search", required=True, help="the search's parent run id, or its name (newest search)")
    p.add_argument("--top", type=positive(int), default=10, help="how many of the best distinct equations (default 10)")
    p.add_argument("--setups", default="A1,A2,A3", help="comma-separated: A1 (search setting), A2 (~10x model), "
                                                         "A3 (5x epochs, cosine), B1 (WRN 10-1, 100 epochs)")
    p.add_argument("--optimizers", default=None, help="sgd, momentum or sgd,momentum (default: the search's)")
    p.add_argument("--seeds", type=positive(int), default=5,
                   help="fresh training seeds per equation and setup (default 5)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU core)")
    p.add_argument("--force", action="store_true", help="allow more than 4 workers per CPU core")
    p.add_argument("--backend", default="loky", help="loky (this machine) or dask")
    p.add_argument("--scheduler", default="", help="Dask scheduler tcp://HOST:PORT (default: a LocalCluster)")
    p.add_argument("--timeout", type=_duration, default=3600.0, metavar="DURATION",
                   help="per training, then status timeout: 600, 90s, 10m, 2h (default 1h)")
    p.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow store holding the search ({DEFAULT_URI})")
    p.add_argument("--out", default=None, help="folder for funnel.md, funnel.csv and plots "
                                               "(default mlruns/funnels/<run id>)")
    p.add_argument("--no-tracking", action="store_true", help="do not log the funnel to MLflow")
    return p


def _duration(text: str) -> float:
    """``--timeout``: a positive duration, as evolve's (``config.parse_duration``)."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use seconds or e.g. 90s, 10m, 2h") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive duration, got {text!r}")
    return seconds


def _lock(search: object) -> SearchLock | None:
    """The lock of the search's folder (``<checkpoint_dir>/<name>``), if that folder is here: no evolve may run or
    resume that search while its finalists are re-trained."""
    params = search.data.params
    folder = Path(params.get("tracking.checkpoint_dir", "mlruns/searches")) / params.get("name", "")
    return SearchLock(folder).acquire() if params.get("name") and folder.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    if args.backend not in BACKENDS:
        fail(PROG, f"unknown backend {args.backend!r}; use {' or '.join(BACKENDS)}")
    if not args.scheduler:
        check_workers(PROG, args.workers, args.force)
    try:
        mc = client(args.tracking_uri)
        search = find_search(mc, args.search)
        lock = _lock(search)
    except (RecordError, CheckpointError) as exc:
        fail(PROG, str(exc))
    try:
        return _reevaluate(args, mc, search)
    finally:
        if lock is not None:
            lock.release()


def _reevaluate(args: argparse.Namespace, mc: object, search: object) -> int:
    """The funnel of ``search`` as ``args`` ask, while its lock is held."""
    try:
        task = task_from_params(search.data.params)
        shape, classes = input_info(task)
        optimizers = (args.optimizers or task.optimizer).split(",")
        chosen = setups(task, [s.strip() for s in args.setups.split(",") if s.strip()], optimizers, shape, classes)
        finalists, baseline = funnel.finalists(mc, search, args.top)
    except (RecordError, SetupError, DataError) as exc:
        fail(PROG, str(exc))
    if not finalists:
        fail(PROG, f"search {search.info.run_id} has no successful candidate besides the baseline")
    seeds = fresh_seeds(task, args.seeds)
    cells, jobs = funnel.plan([baseline, *finalists], chosen, seeds)
    function = search.data.params.get("evaluation.function", "evaluators:evaluate")
    parallel = ParallelConfig(backend=args.backend, workers=args.workers, scheduler=args.scheduler)
    print(f"search {search.info.run_id} ({search.info.run_name}): {len(finalists)} equations + baseline, "
          f"setups {', '.join(s.label for s in chosen)}, seeds {seeds}: {len(jobs)} trainings")
    for s in dict.fromkeys((s.name, s.description) for s in chosen):
        print(f"  {s[0]}: {s[1]}")
    start = time.monotonic()
    bar = tqdm(total=len(jobs), unit="run", dynamic_ncols=True)
    try:
        funnel.run(cells, jobs, parallel, function, args.timeout, on_done=lambda n, total: bar.update(1))
    except BackendError as exc:
        fail(PROG, str(exc))
    finally:
        bar.close()
    out = Path(args.out or Path("mlruns") / "funnels" / search.info.run_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / "funnel.md").write_text(funnel.table(cells, markdown=True) + "\n", encoding="utf-8")
    funnel.write_csv(cells, out / "funnel.csv")
    for label in dict.fromkeys(s.label for s in chosen):
        funnel.plot_curves(cells, label, out / f"curves_{label.replace(' ', '_').replace('+', 'p')}.png")
    print(f"\ntest accuracy (%), mean ± std over {len(seeds)} fresh seeds; * = at least "
          f"{funnel.BOLD_MARGIN} points above the baseline ({time.monotonic() - start:.0f} s)\n")
    print(funnel.table(cells))
    print(f"\nsaved: {out}/funnel.md, funnel.csv, curves_*.png")
    if not args.no_tracking:
        options = {"search_run": search.info.run_id, "setups": args.setups, "optimizers": ",".join(optimizers),
                   "seeds": " ".join(map(str, seeds)), "top": args.top}
        run_id = funnel.log_funnel(mc, search, cells, options, out)
        print(f"MLflow: funnel run {run_id} under search {search.info.run_id} "
              f"(mlflow ui --backend-store-uri {args.tracking_uri} --host 127.0.0.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
