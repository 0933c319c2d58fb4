"""Search throughput on the default digits task, side by side in one run (issue 5's targets):

- worker utilization (seconds inside evaluate / (wall time x workers)), target >= 0.90;
- evaluations/min with 2 workers against 1, target >= 1.7x;
- evaluations/min with MLflow tracking (local sqlite) on against off, target >= 0.95;
- evaluations/min on a Dask LocalCluster against loky, target >= 0.90.

Every configuration runs the same search (same seed, same number of evaluations) from warm workers; evals/min counts
from the first submission to the last result. Tracking and checkpoints go to a temporary folder.
Usage: python benchmarks/search_throughput.py [--evals 200] [--rounds 3] [--workers 2] [--skip dask,tracking,scaling]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from gp_backprop.config import build
from gp_backprop.search import Outcome, run_search


def one(label: str, root: Path, evals: int, seed: int, **layers: dict) -> tuple[int, float, float]:
    """Run one configuration; returns (evaluations, session seconds, worker-busy seconds)."""
    name = "".join(c if c.isalnum() else "-" for c in label) + f"-{time.monotonic_ns()}"
    overrides = {"name": name, "seed": seed, "budget": {"max_evals": evals},
                 "tracking": {"enabled": False, "uri": f"sqlite:///{root}/mlflow.db",
                              "artifacts": str(root / "artifacts"), "checkpoint_dir": str(root / "searches")}}
    for k, v in layers.items():
        overrides[k] = {**overrides.get(k, {}), **v}
    out: Outcome = run_search(build([("benchmark", overrides)]), progress=False)
    n = len(out.controller.population)
    print(f"  {label:<30} {n:>5} evals  {out.evals_per_min:8.1f} evals/min  utilization {out.utilization:.3f}",
          flush=True)
    return n, out.session_seconds, out.utilization * out.session_seconds * out.workers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--evals", type=int, default=200, help="evaluations per configuration and round (default 200)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; configurations alternate within each (default 3)")
    p.add_argument("--workers", type=int, default=2, help="workers for the parallel runs (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", default="", help="comma-separated: scaling, tracking, dask")
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
    print(f"search throughput: default digits task, {args.rounds} x {args.evals} evaluations per configuration, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other work on the machine skews ratios)")
    # Alternating the configurations round by round spreads any drift in machine load over all of them.
    totals = {label: [0, 0.0, 0.0] for label in configs}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            print(f"round {r + 1}")
            for label, layers in configs.items():
                for i, v in enumerate(one(label, Path(d), args.evals, args.seed, **layers)):
                    totals[label][i] += v
    rate = {label: 60.0 * n / secs for label, (n, secs, _) in totals.items()}
    n, secs, busy = totals[f"loky {w} workers"]
    rows = [(f"worker utilization, loky {w} workers", busy / (secs * w), 0.90, "")]
    base = rate[f"loky {w} workers"]
    if "scaling" not in skip:
        rows.append((f"evals/min {w} workers / 1 worker", base / rate["loky 1 worker"], 1.7, "x"))
    if "tracking" not in skip:
        rows.append(("evals/min tracking on / off", rate[f"loky {w} workers, MLflow sqlite"] / base, 0.95, ""))
    if "dask" not in skip:
        rows.append(("evals/min Dask / loky", rate[f"dask LocalCluster {w} workers"] / base, 0.90, ""))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"\n{'measure':<40} {'value':>7}   {'target':>7}")
    for name, value, target, unit in rows:
        print(f"{name:<40} {value:7.3f}{unit:1}  {'>= ' + str(target):>7}  {'ok' if value >= target else 'BELOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
