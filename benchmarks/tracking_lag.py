"""How far MLflow lags behind a search (issue 14's targets): a child run visible within 10 s of its result, tracking
at most 5% of the search's CPU, and at most 10 s of backlog after the last result.

Runs one search (digits with one training per candidate, the most child runs per second a default-sized search
makes; 2 loky workers; a local sqlite store in a temporary folder) in this process,
while a second process polls the store's database every POLL seconds for finished child runs (by their ``gp.key``
tag) and notes when each became visible. Prints:

- the lag from each result (the controller's clock when it came back) to its run being visible: median, p90, max;
- the child runs visible at the moment the last result arrived, of all;
- the end backlog: seconds from the last result to the last run visible;
- tracking's CPU share: the writer thread's CPU time (/proc/<pid>/task/<tid>/stat) over the CPU time of the controller
  process and its workers, sampled every half second.

Usage: python benchmarks/tracking_lag.py [--max-evals 1000] [--workers 2] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

POLL = 0.25
WRITER = "mlflow-tracking"   # the writer thread's name (threading.Thread name)
VISIBLE = ("SELECT t.value FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
           "WHERE t.key = 'gp.key' AND r.status != 'RUNNING'")


def poll(db: str, out: str, stop: str) -> None:
    """The second process: first time each child run (by gp.key) is seen finished, until ``stop`` exists."""
    seen: dict[str, float] = {}
    while not os.path.exists(stop):
        if os.path.exists(db):
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                try:
                    now = time.time()
                    for (key,) in con.execute(VISIBLE):
                        seen.setdefault(key, now)
                finally:
                    con.close()
            except sqlite3.Error:
                pass  # tables not created yet, or a writer holds the lock: next poll
        time.sleep(POLL)
    Path(out).write_text(json.dumps(seen))


def _ticks(path: str) -> int:
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime (fields 14 and 15 of stat)


class CpuSampler(threading.Thread):
    """Cumulative CPU ticks of this process, each descendant process, and the writer thread (last value seen)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.procs: dict[int, int] = {}
        self.writer = 0
        self.done = threading.Event()

    def descendants(self, pid: int) -> list[int]:
        out = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            for k in kids:
                out += [k, *self.descendants(k)]
        return out

    def sample(self) -> None:
        me = os.getpid()
        for pid in [me, *self.descendants(me)]:
            try:
                self.procs[pid] = max(self.procs.get(pid, 0), _ticks(f"/proc/{pid}/stat"))
            except (OSError, IndexError):
                pass
        for t in threading.enumerate():
            if t.name == WRITER and t.native_id:
                try:
                    self.writer = max(self.writer, _ticks(f"/proc/{me}/task/{t.native_id}/stat"))
                except (OSError, IndexError):
                    pass

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.sample()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--max-evals", type=int, default=1000, help="evaluations (default 1000; the default search: 5000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--poll", nargs=3, metavar=("DB", "OUT", "STOP"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.poll:
        poll(*args.poll)
        return 0

    import torch

    from gp_backprop.config import build
    from gp_backprop.search import run_search

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="tracking-lag-"))
    db, seen_file, stop = root / "mlflow.db", root / "seen.json", root / "stop"
    cfg = build([("benchmark", {
        "name": "lag", "seed": args.seed, "budget": {"max_evals": args.max_evals},
        "task": {"dataset": "digits", "lr": 0.1, "model": {"widths": [64, 64]}},
        "fitness": {"tune": False, "lr_grid": [1.0], "lr_reach": 0, "extra_seeds": 0},
        "parallel": {"workers": args.workers},
        "tracking": {"uri": f"sqlite:///{db}", "artifacts": str(root / "artifacts"),
                     "checkpoint_dir": str(root / "searches")}})])
    poller = subprocess.Popen([sys.executable, __file__, "--poll", str(db), str(seen_file), str(stop)])
    sampler = CpuSampler()
    sampler.start()
    t0 = time.time()
    out = run_search(cfg, progress=False)
    t1 = time.time()
    sampler.done.set()
    sampler.join()
    sampler.sample()
    time.sleep(2 * POLL)
    stop.touch()
    poller.wait(timeout=60)
    seen = json.loads(seen_file.read_text())

    entries = out.controller.population
    last = max(e.at for e in entries)
    lags = sorted(seen[e.cand.key] - e.at for e in entries if e.cand.key in seen)
    at_last = sum(1 for t in seen.values() if t <= last)
    total = sum(sampler.procs.values())
    q = statistics.quantiles(lags, n=10) if len(lags) > 1 else lags * 9
    print(f"search: {len(entries)} evaluations on {args.workers} workers in {t1 - t0:.0f} s "
          f"(last result {last - t0:.0f} s after the start), {out.evals_per_min:.0f} evals/min")
    print(f"child runs visible: {len(lags)} of {len(entries)}; at the last result: {at_last}")
    print(f"lag result -> visible run (s): median {statistics.median(lags):.1f}, p90 {q[8]:.1f}, max {lags[-1]:.1f}")
    print(f"end backlog: {max(seen.values()) - last:.1f} s from the last result to the last run visible")
    print(f"tracking CPU: {sampler.writer / os.sysconf('SC_CLK_TCK'):.1f} s of {total / os.sysconf('SC_CLK_TCK'):.0f} s "
          f"= {100 * sampler.writer / max(total, 1):.1f}% of the search's CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
