"""Does a fixed seed replay exactly on the real default search (issue 23)? Three searches of the default task with the
same settings, as a user runs them (`python -m gp_backprop.evolve`, one folder, so the tuning table is computed once):

- a and b run unbroken;
- c is killed with SIGKILL twice (after ``--kills`` fractions of the candidates are recorded) and resumed each time.

It prints, for a against b and a against c, the first index where the final populations differ (each entry's
equation and fitness, in the order recorded; then the rest of its record, timings aside), or "identical".
The fitness and the trainings behind it are whatever the default search does: nothing here depends on them.
Usage: python benchmarks/replay.py [--evals 200] [--workers 1] [--seed 5] [--kills 0.12,0.33] [--keep DIR]
       [-- more evolve flags]
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gp_backprop.search import Entry

TIMINGS = ("busy", "t", "at")   # an entry's clock readings, and its result's wall_time: they differ run to run


def evolve(cwd: Path, name: str, flags: list[str], *extra: str) -> subprocess.Popen:
    log = open(cwd / f"{name}.log", "a")
    return subprocess.Popen([sys.executable, "-m", "gp_backprop.evolve", "--name", name, *flags, *extra], cwd=cwd,
                            stdout=log, stderr=subprocess.STDOUT)


def recorded(cwd: Path, name: str) -> int:
    journal = cwd / "mlruns" / "searches" / name / "journal.jsonl"
    return journal.read_bytes().count(b'{"r"') if journal.exists() else 0


def finish(cwd: Path, name: str, proc: subprocess.Popen) -> None:
    if proc.wait() != 0:
        sys.exit(f"{name} failed (exit code {proc.returncode}); see {cwd / (name + '.log')}")


def killed(cwd: Path, name: str, flags: list[str], at: list[int]) -> list[int]:
    """Run ``name``, kill -9 it once ``at[i]`` results are recorded and resume it, each time; the counts killed at."""
    counts = []
    for i, n in enumerate([*at, 0]):
        proc = evolve(cwd, name, flags, *(["--resume"] if i else []))
        if not n:
            finish(cwd, name, proc)
            break
        while recorded(cwd, name) < n and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            sys.exit(f"{name} ended before {n} results; see {cwd / (name + '.log')}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append(recorded(cwd, name))
    return counts


def population(cwd: Path, name: str) -> list[tuple[str, float, dict[str, Any]]]:
    """(equation, fitness, the rest of the record without timings) per entry, in the order recorded."""
    snap = json.loads((cwd / "mlruns" / "searches" / name / "checkpoint.json").read_text())
    out = []
    for d in snap["controller"]["population"]:
        rest = {k: v for k, v in d.items() if k not in TIMINGS}
        rest["result"] = {k: v for k, v in d["result"].items() if k != "wall_time"}
        out.append((d["cand"]["text"], Entry.from_dict(d).fitness, rest))
    return out


def compare(a: list, b: list) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            what = "equation or fitness" if x[:2] != y[:2] else "record"
            return (f"first differ at index {i} ({what}): {x[0]} {x[1]:.4f} against {y[0]} {y[1]:.4f}; "
                    f"{sum(p != q for p, q in zip(a, b))} of {min(len(a), len(b))} entries differ")
    return "identical" if len(a) == len(b) else f"differ in length: {len(a)} against {len(b)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evals", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--kills", default="0.12,0.33", help="fractions of --evals recorded when c is killed")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (default: a temporary folder)")
    ap.add_argument("extra", nargs="*", help="more evolve flags, after --")
    args = ap.parse_args()
    flags = ["--workers", str(args.workers), "--seed", str(args.seed), "--max-evals", str(args.evals),
             "--no-tracking", "--no-progress", *args.extra]
    at = [max(1, round(float(f) * args.evals)) for f in args.kills.split(",")]
    cwd = Path(args.keep or tempfile.mkdtemp(prefix="replay-"))
    cwd.mkdir(parents=True, exist_ok=True)
    print(f"replay: the default search, {args.evals} candidates, evolve {' '.join(flags)}; in {cwd}", flush=True)
    seconds = {}
    for name in ("a", "b"):
        t = time.monotonic()
        finish(cwd, name, evolve(cwd, name, flags))
        seconds[name] = time.monotonic() - t
        print(f"{name}: unbroken, {len(population(cwd, name))} candidates in {seconds[name]:.0f} s", flush=True)
    t = time.monotonic()
    counts = killed(cwd, "c", flags, at)
    print(f"c: kill -9 at {' and '.join(map(str, counts))} results recorded, --resume after each; "
          f"{len(population(cwd, 'c'))} candidates in {time.monotonic() - t:.0f} s", flush=True)
    a = population(cwd, "a")
    print(f"a against b (two unbroken runs): {compare(a, population(cwd, 'b'))}")
    print(f"a against c (killed twice, resumed): {compare(a, population(cwd, 'c'))}")


if __name__ == "__main__":
    main()
