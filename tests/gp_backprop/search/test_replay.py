"""A fixed seed replays exactly on the real search (issue 23): real trainings of a small real task (digits, one hidden
layer of 32, 3 epochs) under the default protocol (lr grid, extra seeds for a candidate whose first score enters the
top N, screening) in the default chunks, run as a user runs it (`python -m gp_backprop.evolve`, killed with SIGKILL).
The same settings give the same population twice, and after kill -9 at any moment (in a chunk, during a promoted
candidate's extra seeds) --resume ends with that population too, with one worker or two."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.gp_backprop.conftest import cli, cli_env

FLAGS = ["--dataset", "digits", "--epochs", "3", "--set", "task.model.widths=[32]", "--no-progress", "--no-tune",
         "--no-tracking", "--population", "8", "--max-evals", "30", "--seed", "5",
         "--set", "evaluation.function=tests.gp_backprop.faults:holding", "--set", "tracking.checkpoint_every=0.3"]
EXTRA_SEED = 1001      # the task's seed 0 + 1000 + 1: the second extra seed of a promoted candidate
STUCK = 600.0          # seconds: a guard against a hang, not a measurement


def start(cwd: Path, name: str, workers: int, *extra: str, hold: str = "") -> subprocess.Popen:
    """Run the search in the background; with ``hold`` its worker stops for good where that says (faults.holding)."""
    env = cli_env(GP_HOLD=hold, GP_HOLD_MARK=str(cwd / f"{name}.held"))
    log = open(cwd / f"{name}.log", "a")
    return subprocess.Popen(cli(*FLAGS, "--name", name, "--workers", str(workers), *extra), cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def finish(cwd: Path, name: str, workers: int, *extra: str) -> None:
    proc = start(cwd, name, workers, *extra)
    assert proc.wait(timeout=STUCK) == 0, (cwd / f"{name}.log").read_text()


def kill_when_held(cwd: Path, name: str, workers: int, hold: str, *extra: str) -> int:
    """Start the search, kill -9 it once its worker holds where ``hold`` says; the results recorded by then."""
    mark = cwd / f"{name}.held"
    mark.unlink(missing_ok=True)
    proc = start(cwd, name, workers, *extra, hold=hold)
    deadline = time.monotonic() + STUCK
    while not mark.exists():
        assert proc.poll() is None and time.monotonic() < deadline, (cwd / f"{name}.log").read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=STUCK) == -signal.SIGKILL
    return len(journal(cwd, name, "r"))


def journal(cwd: Path, name: str, kind: str) -> list[dict[str, Any]]:
    lines = (cwd / "mlruns" / "searches" / name / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)[kind] for line in lines if line.startswith(f'{{"{kind}"')]


def population(cwd: Path, name: str) -> list[dict[str, Any]]:
    """The finished search's entries in the order recorded: candidate, result and score, without timings."""
    snap = json.loads((cwd / "mlruns" / "searches" / name / "checkpoint.json").read_text())
    assert snap["status"] == "finished" and not snap["controller"]["inflight"]
    pop = []
    for e in snap["controller"]["population"]:
        e = {k: v for k, v in e.items() if k not in ("busy", "t", "at")}
        e["result"] = {k: v for k, v in e["result"].items() if k != "wall_time"}
        pop.append(e)
    return pop


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    cwd = tmp_path_factory.mktemp("replay")
    finish(cwd, "a", 1)
    return cwd, population(cwd, "a")


def test_the_same_seed_gives_the_same_population_and_so_does_a_search_killed_twice(
        unbroken: tuple[Path, list]) -> None:
    cwd, first = unbroken
    assert len(first) == 30
    promoted = [e for e in first if e["score"]["n"] == 3]
    assert promoted and any(e["result"]["status"] == "hurdle" for e in first)   # extra seeds and screening ran
    assert journal(cwd, "a", "h")       # and candidates finished before older ones, and waited for their turn

    finish(cwd, "b", 1)
    assert population(cwd, "b") == first

    # kill -9 while a promoted candidate's extra seeds are in a chunk, then in the middle of a chunk
    # (some of its members ended, the others still training), resuming each time.
    at_seeds = kill_when_held(cwd, "c", 1, f"seed:{EXTRA_SEED}")
    in_chunk = kill_when_held(cwd, "c", 1, "ended:40", "--resume")
    assert at_seeds < in_chunk < 30   # the first kill may come before any result: the first chunk's are promoted
    finish(cwd, "c", 1, "--resume")
    assert population(cwd, "c") == first
    told = [r["cand"]["cid"] for r in journal(cwd, "c", "r")]
    assert told == list(range(30))      # each candidate recorded once, in the order proposed


def test_two_workers_replay_and_a_search_resumed_with_one_worker_ends_the_same(tmp_path: Path) -> None:
    finish(tmp_path, "d", 2)
    killed_at = kill_when_held(tmp_path, "e", 2, "ended:30")
    assert 0 < killed_at < 30
    finish(tmp_path, "e", 1, "--resume")        # one worker now: the search keeps its lookahead, and replays
    assert "keeps" in (tmp_path / "e.log").read_text() and "candidates in flight" in (tmp_path / "e.log").read_text()
    assert population(tmp_path, "e") == population(tmp_path, "d")
