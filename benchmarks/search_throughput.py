"""Search throughput on the digits task (one training per candidate), side by side in one run (issue 5's targets):

- worker utilization (seconds inside evaluate / (wall time x workers)), target >= 0.90;
- evaluations/min with 2 workers against 1, target >= 1.7x;
- evaluations/min with MLflow tracking (local sqlite) on against off, target >= 0.95;
- evaluations/min on a Dask LocalCluster against loky, target >= 0.90;
- the search's own overhead, with candidates that only sleep (no CPU, so the figure does not depend on how busy the
  machine is): worker utilization with 50 ms candidates and a checkpoint every 0.1 s, target >= 0.85, and with
  100 ms candidates and a tracking store that takes 0.1 s per child run, target >= 0.80 (logging in line with the
  search would give at most 0.5).

Every configuration trains the same candidates: the seed's first EVALS random equations (space.population = EVALS),
which do not depend on the order results come back in. (A search's later mutants do, and on a 2-core machine the
changing mix of cheap and dear candidates moved evals/min by +-15% between identical runs.) Configurations alternate
within each round, in an order rotated from round to round, from warm workers; evals/min counts from the first
submission to the last result, so a tracking backlog written after the search is not counted (its size is printed).
Each ratio is taken within a round, against that round's loky run; the table shows the median over rounds and the
range. Tracking and checkpoints go to a temporary folder.
Usage: python benchmarks/search_throughput.py [--evals 400] [--rounds 5] [--workers 2]
       [--skip dask,tracking,scaling,overhead]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from evaluators.task import EvalResult, TaskSpec
from gp_backprop.config import build
from gp_backprop.search import Outcome, run_search

SLOW_STORE = 0.1     # seconds per child run that the overhead runs' slow store takes (a distant server)


def sleeping(text: str, task: TaskSpec) -> EvalResult:
    """The overhead runs' evaluation (imported by name in the workers): GP_SLEEP seconds, no CPU."""
    time.sleep(float(os.environ["GP_SLEEP"]))
    return EvalResult("ok", val_acc=0.5, val_curve=(0.5, 0.5))


def slow_store(on: bool) -> None:
    """Make the local store's batch write take SLOW_STORE seconds per child run longer (or restore it)."""
    from gp_backprop.tracking.sinks import SqlSink  # not at the top: the workers import this module for ``sleeping``
    if on and not hasattr(SqlSink, "_fast_write"):
        SqlSink._fast_write = SqlSink.write
        SqlSink.write = lambda self, records: (time.sleep(SLOW_STORE * len(records)), self._fast_write(records))[1]
    elif not on and hasattr(SqlSink, "_fast_write"):
        SqlSink.write = SqlSink._fast_write
        del SqlSink._fast_write


def one(label: str, root: Path, evals: int, seed: int, sleep: float = 0.0, **layers: dict) -> tuple[float, float]:
    """Run one configuration; returns (evaluations/min, worker utilization). ``sleep`` > 0: candidates that sleep
    this long instead of training."""
    name = "".join(c if c.isalnum() else "-" for c in label) + f"-{time.monotonic_ns()}"
    # The engine's throughput: the digits task, one training per candidate (no lr tuning, grid or extra seeds), as
    # the figures in benchmarks/README.md were measured.
    overrides = {"name": name, "seed": seed, "budget": {"max_evals": evals}, "space": {"population": evals},
                 "task": {"dataset": "digits", "lr": 0.1, "model": {"widths": [64, 64]}},
                 "fitness": {"tune": False, "lr_grid": [1.0], "lr_reach": 0, "extra_seeds": 0},
                 "tracking": {"enabled": False, "uri": f"sqlite:///{root}/mlflow.db",
                              "artifacts": str(root / "artifacts"), "checkpoint_dir": str(root / "searches")}}
    if sleep:
        os.environ["GP_SLEEP"] = str(sleep)
        overrides["evaluation"] = {"function": "search_throughput:sleeping"}
    for k, v in layers.items():
        overrides[k] = {**overrides.get(k, {}), **v}
    slow_store(label.endswith("slow store"))
    try:
        out: Outcome = run_search(build([("benchmark", overrides)]), progress=False)
    finally:
        slow_store(False)
    n = len(out.controller.population)
    print(f"  {label:<30} {n:>5} evals  {out.evals_per_min:8.1f} evals/min  utilization {out.utilization:.3f}",
          flush=True)
    return out.evals_per_min, out.utilization


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--evals", type=int, default=400, help="evaluations per configuration and round (default 400)")
    p.add_argument("--rounds", type=int, default=5, help="rounds; configurations alternate within each (default 5)")
    p.add_argument("--workers", type=int, default=2, help="workers for the parallel runs (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", default="", help="comma-separated: scaling, tracking, dask, overhead")
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    w = args.workers
    configs = {f"loky {w} workers": {"parallel": {"workers": w}}}
    if "scaling" not in skip:
        configs["loky 1 worker"] = {"parallel": {"workers": 1}}
    if "tracking" not in skip:
        configs[f"loky {w} workers, MLflow sqlite"] = {"parallel": {"workers": w}, "tracking": {"enabled": True}}
    if "dask" not in skip:
        configs[f"dask LocalCluster {w} workers"] = {"parallel": {"workers": w, "backend": "dask"}}
    if "overhead" not in skip:
        # At most 160 candidates: the slow store's backlog (0.1 s each) is written after the search.
        budget = {"max_evals": min(args.evals, 160)}
        configs["sleep 50 ms, checkpoint 0.1 s"] = {"sleep": 0.05, "parallel": {"workers": w}, "budget": budget,
                                                    "tracking": {"checkpoint_every": 0.1}}
        configs["sleep 100 ms, slow store"] = {"sleep": 0.1, "parallel": {"workers": w}, "budget": budget,
                                               "tracking": {"enabled": True}}
    print(f"search throughput: digits task, one training per candidate, {args.rounds} x {args.evals} evaluations per configuration, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other work on the machine skews ratios)")
    # Alternating the configurations round by round spreads any drift in machine load over all of them; rotating
    # their order each round spreads any effect of going first or following another (in one run of this script the
    # first configuration, loky without tracking, was slower than the same with tracking in all five rounds).
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in configs}
    labels = list(configs)
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            print(f"round {r + 1}")
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                runs[label].append(one(label, Path(d), args.evals, args.seed, **configs[label]))
    base = f"loky {w} workers"

    def ratio(label: str) -> list[float]:
        return [a[0] / b[0] for a, b in zip(runs[label], runs[base])]

    rows = [(f"worker utilization, loky {w} workers", [u for _, u in runs[base]], 0.90, "")]
    if "scaling" not in skip:
        rows.append((f"evals/min {w} workers / 1 worker", [1 / x for x in ratio("loky 1 worker")], 1.7, "x"))
    if "tracking" not in skip:
        rows.append(("evals/min tracking on / off", ratio(f"loky {w} workers, MLflow sqlite"), 0.95, ""))
    if "dask" not in skip:
        rows.append(("evals/min Dask / loky", ratio(f"dask LocalCluster {w} workers"), 0.90, ""))
    if "overhead" not in skip:
        for label, target in (("sleep 50 ms, checkpoint 0.1 s", 0.85), ("sleep 100 ms, slow store", 0.80)):
            rows.append((f"worker utilization, {label}", [u for _, u in runs[label]], target, ""))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"\n{'measure':<52} {'median':>7}   {'target':>7}       range over {args.rounds} rounds")
    for name, values, target, unit in rows:
        value = statistics.median(values)
        print(f"{name:<52} {value:7.3f}{unit:1}  {'>= ' + str(target):>7}  {'ok' if value >= target else 'BELOW':5}"
              f"  {min(values):.3f}-{max(values):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
