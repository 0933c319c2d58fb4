"""``python -m gp_backprop.reevaluate --search RUN_ID_OR_NAME[,...]``: the generalization funnel of Backprop Evolution
(Table 1): re-train a finished search's top distinct functions (or the pooled top of several searches of one task)
and the controls, each at its own tuned lr, on fresh seeds in setups A1, A2, A3 (B1 for WRN searches, A1@<dataset>
for --tasks), compare them with paired tests, print the table, save it as markdown and CSV, and log it to MLflow under
the (first) search."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evaluators import DataError, TaskError, TaskSpec, check_task

from gp_backprop import funnel
from gp_backprop.cli import OneLineParser, check_workers, fail, positive
from gp_backprop.config import ParallelConfig, parse_duration
from gp_backprop.funnel import Finalist, Setup, SetupError, fresh_seeds, input_info, setups, task_from_params
from gp_backprop.parallel import BACKENDS, Backend, BackendError, make_backend
from gp_backprop.search import CheckpointError, SearchLock
from gp_backprop.tracking import DEFAULT_URI, RecordError, client
from gp_backprop.tuning import Tuning

PROG = "reevaluate"


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m gp_backprop.reevaluate", allow_abbrev=False,
                      description="Re-test a search's best equations against controls on bigger models and longer "
                                  "training.")
    p.add_argument("--search", required=True, help="the search's parent run id, or its name (newest search); several "
                                                   "searches of one task, comma-separated, pool their finalists")
    p.add_argument("--top", type=positive(int), default=10,
                   help="how many of the best distinct functions (default 10)")
    p.add_argument("--setups", default="A1,A2,A3", help="comma-separated: A1 (search setting), A2 (~10x model), "
                                                         "A3 (5x epochs, cosine), B1 (WRN 10-1, 100 epochs)")
    p.add_argument("--tasks", default="", help="other datasets (names or package.module:function plug-ins) to "
                                               "re-run A1 on, for transfer: e.g. --tasks digits")
    p.add_argument("--optimizers", default=None, help="sgd, momentum or sgd,momentum (default: the search's)")
    p.add_argument("--seeds", type=positive(int), default=5,
                   help="fresh training seeds per row and setup, at least 2 for the paired tests (default 5)")
    p.add_argument("--tune-points", type=positive(int), default=None,
                   help="lr grid points when tuning each row (default: the search's fitness.tune_points)")
    p.add_argument("--no-tune", action="store_true", help="every row at the search's lr (no per-row tuning)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU core)")
    p.add_argument("--force", action="store_true", help="allow more than 4 workers per CPU core")
    p.add_argument("--backend", default="loky", help="loky (this machine) or dask")
    p.add_argument("--scheduler", default="", help="Dask scheduler tcp://HOST:PORT (default: a LocalCluster)")
    p.add_argument("--timeout", type=_duration, default=3600.0, metavar="DURATION",
                   help="per training, then status timeout: 600, 90s, 10m, 2h (default 1h)")
    p.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow store holding the search ({DEFAULT_URI})")
    p.add_argument("--out", default=None, help="folder for funnel.md, funnel.csv, tuning.txt and plots "
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


def _locks(searches: list[Any]) -> list[SearchLock]:
    """The locks of the searches' folders, all taken, or ``CheckpointError`` with none held."""
    held: list[SearchLock] = []
    try:
        for s in searches:
            lock = _lock(s)
            if lock is not None:
                held.append(lock)
    except CheckpointError:
        for lock in held:
            lock.release()
        raise
    return held


def _lock(search: Any) -> SearchLock | None:
    """The lock of the search's folder (``<checkpoint_dir>/<name>``), if that folder is here: no evolve may run or
    resume that search while its finalists are re-trained."""
    params = search.data.params
    folder = Path(params.get("tracking.checkpoint_dir", "mlruns/searches")) / params.get("name", "")
    return SearchLock(folder).acquire() if params.get("name") and folder.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.seeds < 2:
        fail(PROG, f"--seeds {args.seeds}: the paired tests need at least 2 fresh seeds")
    if args.backend not in BACKENDS:
        fail(PROG, f"unknown backend {args.backend!r}; use {' or '.join(BACKENDS)}")
    if not args.scheduler:
        check_workers(PROG, args.workers, args.force)
    try:
        mc = client(args.tracking_uri)
        searches = funnel.find_searches(mc, args.search)
        locks = _locks(searches)
    except (RecordError, CheckpointError) as exc:
        fail(PROG, str(exc))
    try:
        return _reevaluate(args, mc, searches)
    finally:
        for lock in locks:
            lock.release()


def _reevaluate(args: argparse.Namespace, mc: Any, searches: list[Any]) -> int:
    """The funnel of ``searches`` (their finalists pooled) as ``args`` ask, while their locks are held; its records
    go under the first."""
    search = searches[0]
    params = search.data.params
    try:
        task = task_from_params(params)
        shape, classes = input_info(task)
        optimizers = (args.optimizers or task.optimizer).split(",")
        chosen = setups(task, _names(args.setups), optimizers, shape, classes)
        chosen += funnel.transfer(chosen, _names(args.tasks))
        for s in chosen:
            check_task(s.task)
        rows = funnel.rows(mc, searches, args.top)
    except (RecordError, SetupError, DataError, TaskError) as exc:
        fail(PROG, str(exc))
    names = ", ".join(f"{s.info.run_id} ({s.info.run_name})" for s in searches)
    if all(r.control for r in rows):
        fail(PROG, f"search {names} has no successful candidate besides the controls")
    seeds = fresh_seeds(task, args.seeds)
    center = float(params.get("fitness.tuned_lr", task.lr))
    grid = (args.tune_points or int(params.get("fitness.tune_points", 8)), float(params.get("fitness.tune_factor", 2)),
            int(params.get("fitness.tune_seeds", 3)))
    backend = make_backend(args.backend, params.get("evaluation.function", "evaluators:evaluate"), task,
                           workers=args.workers, timeout=args.timeout, scheduler=args.scheduler,
                           members=ParallelConfig.chunk)
    print(f"search {names}: {sum(not r.control for r in rows)} finalists + "
          f"{', '.join(r.control + (f' (found: {r.found})' if r.found else '') for r in rows if r.control)}; setups {', '.join(s.label for s in chosen)}; "
          f"fresh seeds {seeds}")
    for s in dict.fromkeys((s.name, s.description) for s in chosen):
        print(f"  {s[0]}: {s[1]}")
    start = time.monotonic()
    try:
        backend.start()
        factors, tables = _tune(args, rows, chosen, task, center, grid, backend, tuning_folder(params))
        cells, jobs = funnel.plan(rows, chosen, seeds, factors)
        with tqdm(total=len(jobs), unit="run", dynamic_ncols=True, desc="re-tests") as bar:
            funnel.run(cells, jobs, backend, on_done=lambda n, total: bar.update(1))
    except BackendError as exc:
        fail(PROG, str(exc))
    finally:
        backend.close()
    out = Path(args.out or Path("mlruns") / "funnels" / search.info.run_id)
    funnel.save(out, cells, chosen, tables, rows)
    print(f"\n{funnel.legend(len(seeds))} ({time.monotonic() - start:.0f} s)\n\n{funnel.table(cells)}\n\n"
          f"saved: {out}/funnel.md, funnel.csv, tuning.txt, curves_*.png")
    if not args.no_tracking:
        options = {"search_run": ",".join(s.info.run_id for s in searches), "setups": args.setups, "tasks": args.tasks,
                   "optimizers": ",".join(optimizers), "seeds": " ".join(map(str, seeds)), "top": args.top}
        run_id = funnel.log_funnel(mc, search, cells, options, out)
        print(f"MLflow: funnel run {run_id} under search {search.info.run_id} "
              f"(mlflow ui --backend-store-uri {args.tracking_uri} --host 127.0.0.1)")
    return 0


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def tuning_folder(params: dict[str, str]) -> Path:
    """The search's tuning cache (``<checkpoint_dir>/../tuning``, as ``search.reference.tuning_folder``): the
    reference's table from the search is a cache hit here."""
    return Path(params.get("tracking.checkpoint_dir", "mlruns/searches")).parent / "tuning"


def _tune(args: Any, rows: list[Finalist], chosen: list[Setup], task: TaskSpec, center: float,
          grid: tuple[int, float, int], backend: Backend,
          folder: Path) -> tuple[dict[tuple[str, str], float], dict[Any, Tuning]]:
    if args.no_tune:
        return {}, {}
    total = len(rows) * len(dict.fromkeys(s.task.dataset for s in chosen)) * grid[0] * grid[2]
    print(f"tuning each row's lr on validation: {grid[0]} lrs around {center:g}, x{grid[1]:g} apart, {grid[2]} seeds "
          f"each (up to {total} trainings; cached in {folder})")
    with tqdm(total=total, unit="run", dynamic_ncols=True, desc="tuning") as bar:
        return funnel.tune_rows(rows, chosen, task, center, backend, grid, folder,
                                on_done=lambda n, t: bar.update(1))


if __name__ == "__main__":
    sys.exit(main())
