"""Search throughput on the default digits task, side by side in one run (issue 5's targets):

- worker utilization (seconds inside evaluate / (wall time x workers)), target >= 0.90;
- evaluations/min with 2 workers against 1, target >= 1.7x;
- evaluations/min with MLflow tracking (local sqlite) on against off, target >= 0.95;
- evaluations/min on a Dask LocalCluster against loky, target >= 0.90.

Every configuration trains the same candidates: the seed's first EVALS random equations (space.population = EVALS),
which do not depend on the order results come back in. (A search's later mutants do, and on a 2-core machine the
changing mix of cheap and dear candidates moved evals/min by +-15% between identical runs.) Configurations alternate
within each round, in an order rotated from round to round, from warm workers; evals/min counts from the first
submission to the last result, so a tracking backlog written after the search is not counted (its size is printed).
Each ratio is taken within a round, against that round's loky run; the table shows the median over rounds and the
range. Tracking and checkpoints go to a temporary folder.
Usage: python benchmarks/search_throughput.py [--evals 400] [--rounds 5] [--workers 2] [--skip dask,tracking,scaling]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gp_backprop.config import build
from gp_backprop.search import Outcome, run_search


def one(label: str, root: Path, evals: int, seed: int, **layers: dict) -> tuple[float, float]:
    """Run one configuration; returns (evaluations/min, worker utilization)."""
    name = "".join(c if c.isalnum() else "-" for c in label) + f"-{time.monotonic_ns()}"
    overrides = {"name": name, "seed": seed, "budget": {"max_evals": evals}, "space": {"population": evals},
                 "tracking": {"enabled": False, "uri": f"sqlite:///{root}/mlflow.db",
                              "artifacts": str(root / "artifacts"), "checkpoint_dir": str(root / "searches")}}
    for k, v in layers.items():
        overrides[k] = {**overrides.get(k, {}), **v}
    out: Outcome = run_search(build([("benchmark", overrides)]), progress=False)
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
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"\n{'measure':<40} {'median':>7}   {'target':>7}       range over {args.rounds} rounds")
    for name, values, target, unit in rows:
        value = statistics.median(values)
        print(f"{name:<40} {value:7.3f}{unit:1}  {'>= ' + str(target):>7}  {'ok' if value >= target else 'BELOW':5}"
              f"  {min(values):.3f}-{max(values):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
