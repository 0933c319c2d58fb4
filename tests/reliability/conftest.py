"""Real processes for the reliability tests (issue 15): a tiny deterministic search run by `python -m
gp_backprop.evolve`, started, signalled, limited and resumed as a user would, and compared with an unbroken one.

With one worker and a fixed seed the search replays exactly, so "nothing lost" is checked as "the final population
equals the unbroken search's". Candidates sleep 50 ms and get a fake accuracy from their text (faults.sleeping):
the search takes seconds, and is slow enough to be interrupted in the middle.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.gp_backprop.conftest import TINY_FLAGS, cli, cli_env

EVALS = 30
FLAGS = [*TINY_FLAGS, "--workers", "1", "--max-evals", str(EVALS), "--population", "8", "--seed", "5",
         "--no-tracking", "--set", "evaluation.function=tests.gp_backprop.faults:sleeping",
         "--set", "tracking.checkpoint_every=0.2"]
ENV = {"GP_SLEEP": "0.05"}
DEADLINE = 120.0  # seconds: generous, only a hung process meets it


def folder(cwd: Path, name: str) -> Path:
    return cwd / "mlruns" / "searches" / name


def evolve(cwd: Path, name: str, *extra: str, **kw: Any) -> subprocess.CompletedProcess:
    """Run the search to its end (or its error) and return the finished process."""
    return subprocess.run(cli(*FLAGS, "--name", name, *extra), cwd=cwd, capture_output=True, text=True,
                          timeout=DEADLINE, env=cli_env(**ENV), **kw)


def start(cwd: Path, name: str, *extra: str, **kw: Any) -> subprocess.Popen:
    """Start the search in the background; its stdout and stderr go to <name>.out and <name>.err."""
    out, err = open(cwd / f"{name}.out", "w"), open(cwd / f"{name}.err", "w")
    return subprocess.Popen(cli(*FLAGS, "--name", name, *extra), cwd=cwd, stdout=out, stderr=err,
                            env=cli_env(**ENV), **kw)


def results(cwd: Path, name: str) -> int:
    journal = folder(cwd, name) / "journal.jsonl"
    return journal.read_bytes().count(b'{"r"') if journal.exists() else 0


def wait_results(cwd: Path, name: str, n: int, proc: subprocess.Popen) -> None:
    """Wait until ``n`` results are journaled (the process must still be running then)."""
    deadline = time.monotonic() + DEADLINE
    while results(cwd, name) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None and results(cwd, name) >= n, (cwd / f"{name}.err").read_text()


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + DEADLINE
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(Path(f"/proc/{p}").exists() for p in pids)


def kill9(cwd: Path, name: str, proc: subprocess.Popen) -> None:
    """kill -9 the controller and wait until its workers (and loky's resource tracker) are gone too."""
    kids = children(proc.pid)
    proc.kill()
    proc.wait(timeout=DEADLINE)
    assert gone(kids)


def snapshot(cwd: Path, name: str) -> dict[str, Any]:
    return json.loads((folder(cwd, name) / "checkpoint.json").read_text())


def population(cwd: Path, name: str) -> list[tuple[dict, dict]]:
    """The finished search's population: candidates and results in evaluation order, without timings."""
    snap = snapshot(cwd, name)
    assert snap["status"] == "finished"
    return [(e["cand"], {k: v for k, v in e["result"].items() if k != "wall_time"})
            for e in snap["controller"]["population"]]


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def unbroken(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict, dict]]:
    cwd = tmp_path_factory.mktemp("unbroken")
    proc = evolve(cwd, "whole")
    assert proc.returncode == 0, proc.stderr
    return population(cwd, "whole")


@pytest.fixture
def interrupted(tmp_path: Path) -> Path:
    """A search killed with -9 after 12 results, in ``tmp_path`` under the name "s"."""
    proc = start(tmp_path, "s")
    wait_results(tmp_path, "s", 12, proc)
    kill9(tmp_path, "s", proc)
    return tmp_path

