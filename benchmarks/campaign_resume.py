"""Does a campaign killed in the middle of a search and resumed give the tables of an unbroken one (issue 22), on the
real default task with two workers? The same campaign file runs twice, as a user runs it
(`python -m gp_backprop.campaign FILE`), each in its own folder:

- a runs unbroken;
- b is killed with SIGKILL, with its worker processes, once its ``--kill-search``-th search has recorded
  ``--kill-at`` of its candidates, then continued with ``--resume``.

It prints, for each search, the comparison of the final populations (as ``replay.py``: equations, fitnesses and
records, timings aside), and for the funnel and transfer stages whether their ``funnel.csv`` (every row's per-seed
test accuracies, statuses, tuned lr factors, differences and Holm-corrected p-values) is byte for byte the same.
The default file is a mid-size campaign of the default task (two searches of 120 candidates, top 3 in A1 on 3 seeds,
one transfer); ``--campaign`` runs another, e.g. one of campaigns/ (hours).
Usage: python benchmarks/campaign_resume.py [--campaign FILE] [--kill-search 2] [--kill-at 0.5] [--keep DIR]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path


def _beside(name: str):   # noqa: ANN202 - a module
    """A script beside this one (benchmarks/ is no package): replay.py's recorded, population and compare."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


replay = _beside("replay")

MID_SIZE = """name = "resume"
out = "results"
description = "benchmarks/campaign_resume.py: a mid-size campaign of the default task"

[search]
preset = "default"
seeds = [1, 2]
max_evals = 120

[search.parallel]
workers = 2

[funnel]
top = 3
setups = ["A1"]
seeds = 3
controls = ["backprop", "backprop_fro"]

[[transfer]]
label = "digits"
description = "another dataset: scikit-learn's digits"
[transfer.task]
dataset = "digits"
"""


def campaign(cwd: Path, *extra: str) -> subprocess.Popen:
    log = open(cwd / "campaign.log", "a")
    return subprocess.Popen([sys.executable, "-m", "gp_backprop.campaign", "campaign.toml", "--no-progress", *extra],
                            cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def finish(cwd: Path, proc: subprocess.Popen) -> None:
    if proc.wait() != 0:
        sys.exit(f"the campaign in {cwd} failed (exit code {proc.returncode}); see {cwd / 'campaign.log'}")


def killed(cwd: Path, search: str, at: int) -> int:
    """Run the campaign, SIGKILL its process group once ``search`` has recorded ``at`` results, and resume it."""
    proc = campaign(cwd)
    while replay.recorded(cwd, search) < at and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        sys.exit(f"the campaign in {cwd} ended before {search} recorded {at} results; see {cwd / 'campaign.log'}")
    os.killpg(proc.pid, signal.SIGKILL)   # the campaign and its workers, as kill -9 of the whole job
    proc.wait()
    count = replay.recorded(cwd, search)
    finish(cwd, campaign(cwd, "--resume"))
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--campaign", type=Path, help="a campaign file (default: the mid-size one above)")
    ap.add_argument("--kill-search", type=int, default=2, help="which search (1-based) b is killed in")
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of that search's candidates recorded")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (default: a temporary folder)")
    args = ap.parse_args()
    text = args.campaign.read_text() if args.campaign else MID_SIZE
    spec = tomllib.loads(text)
    names = [f"{spec['name']}-s{seed}" for seed in spec["search"]["seeds"]]
    root = Path(args.keep or tempfile.mkdtemp(prefix="campaign-resume-"))
    a, b = root / "a", root / "b"
    for cwd in (a, b):
        cwd.mkdir(parents=True, exist_ok=True)
        (cwd / "campaign.toml").write_text(text)
    print(f"campaign_resume: campaign {spec['name']!r}, searches {', '.join(names)}; in {root}", flush=True)
    t = time.monotonic()
    finish(a, campaign(a))
    print(f"a: unbroken, {time.monotonic() - t:.0f} s", flush=True)
    at = max(1, round(args.kill_at * spec["search"]["max_evals"]))
    t = time.monotonic()
    count = killed(b, names[args.kill_search - 1], at)
    print(f"b: kill -9 at {count} results of {names[args.kill_search - 1]}, then --resume; "
          f"{time.monotonic() - t:.0f} s", flush=True)
    for name in names:
        print(f"search {name}, a against b: {replay.compare(replay.population(a, name), replay.population(b, name))}")
    out = Path(spec.get("out", f"results/{spec['name']}"))
    for stage in ("funnel", "transfer"):
        same = (a / out / stage / "funnel.csv").read_bytes() == (b / out / stage / "funnel.csv").read_bytes()
        print(f"{stage} table (funnel.csv), a against b: {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
