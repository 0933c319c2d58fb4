"""What telling results in proposal order costs (issue 23): the default search with this tree's loop (results told in
proposal order, proposals at points fixed by that order) against a revision before it (results told as they arrive),
side by side on the same machine, as a user runs them (`python -m gp_backprop.evolve`, the default task and protocol,
tuning taken from one shared cache so that it is not timed).

Both train the same candidates: the seed's first EVALS random equations (space.population = EVALS), which do not
depend on the order results come back in (later mutants do, and a different mix of cheap, screened and promoted
candidates moves evaluations/min more than the loop does). With the top N never full, every candidate that trains
"ok" is promoted to extra seeds, the most a search ever waits for an older candidate: the case that costs ordered
release the most. Rounds alternate the two (ABBA order). Per run it reads the summary's evaluations/min (this session:
from the first submission to the last result, without start-up and tuning) and worker utilization (seconds inside
the evaluation / wall time x workers: what the wait for older candidates can cost); each ratio is this tree over the
revision within a round, and the table shows the median over rounds and the range.
Usage: python benchmarks/ordered_release.py [--base f175672] [--evals 150] [--workers 2] [--rounds 5]
"""
from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"this session ([\d.]+) evals/min on \d+ workers, \d+ trainings, utilization ([\d.]+)")


def checkout(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (this repository's history) in ``into``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def search(tree: Path, cwd: Path, name: str, flags: list[str]) -> tuple[float, float]:
    """Run one search with the code in ``tree``; (evaluations/min, utilization) of its session."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-m", "gp_backprop.evolve", "--name", name, *flags], cwd=cwd, env=env,
                          capture_output=True, text=True)
    m = SUMMARY.search(proc.stdout)
    if proc.returncode != 0 or m is None:
        sys.exit(f"{name} failed (exit code {proc.returncode}): {proc.stderr[-2000:]}")
    return float(m[1]), float(m[2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="f175672", help="the revision to compare with (default: before issue 23)")
    ap.add_argument("--evals", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    flags = ["--workers", str(args.workers), "--seed", str(args.seed), "--max-evals", str(args.evals), "--no-tracking",
             "--no-progress", "--population", str(args.evals)]
    with tempfile.TemporaryDirectory(prefix="ordered-") as tmp:
        tmp = Path(tmp)
        trees = {"ordered": ROOT, "arrival": checkout(args.base, tmp / "base")}
        cwd = tmp / "run"
        cwd.mkdir()
        search(ROOT, cwd, "warm-up", [*flags[:4], "--max-evals", "1", *flags[6:]])   # tunes once, into the cache
        rows: dict[str, list[tuple[float, float]]] = {"ordered": [], "arrival": []}
        print(f"the default task and protocol, the same {args.evals} random candidates, {args.workers} workers: this "
              f"tree (ordered) against {args.base} (arrival order)", flush=True)
        for r in range(args.rounds):
            for side in (("arrival", "ordered") if r % 2 == 0 else ("ordered", "arrival")):
                rows[side].append(search(trees[side], cwd, f"{side}-{r}", flags))
                e, u = rows[side][-1]
                print(f"  round {r + 1} {side:8s} {e:6.1f} evals/min, utilization {u:.2f}", flush=True)
    print(f"\n{'ordered / arrival':24s} {'median':>8s} {'range':>15s}")
    for i, what in enumerate(("evals/min", "utilization")):
        ratios = [o[i] / a[i] for o, a in zip(rows["ordered"], rows["arrival"])]
        print(f"{what:24s} {statistics.median(ratios):8.3f} {min(ratios):7.3f}-{max(ratios):.3f}")


if __name__ == "__main__":
    main()
