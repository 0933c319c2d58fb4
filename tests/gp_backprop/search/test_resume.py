"""Crash safety (issue 5): after kill -9 of the controller, or Ctrl-C, --resume loses and repeats nothing, and with a
fixed seed the resumed search ends exactly where an unbroken one does, candidates that finished out of turn included
(issue 23)."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gp_backprop.config import ParallelConfig
from gp_backprop.search.loop import CHUNKS_AHEAD
from tests.gp_backprop.conftest import TINY_FLAGS, cli, cli_env

EVALS = 40
FLAGS = [*TINY_FLAGS, "--workers", "1", "--max-evals", str(EVALS), "--population", "10", "--seed", "3",
         "--set", "evaluation.function=tests.gp_backprop.faults:counting", "--set", "tracking.checkpoint_every=0.3"]


def run_cli(cwd: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cli(*FLAGS, "--name", name, *extra), cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=cli_env(GP_COUNT_LOG=str(cwd / f"{name}.log")))
    assert proc.returncode == 0, proc.stderr
    return proc


def results(cwd: Path, name: str) -> list[dict[str, Any]]:
    lines = (cwd / "mlruns" / "searches" / name / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)["r"] for line in lines if line.startswith('{"r"')]


def final(cwd: Path, name: str) -> tuple[list, list]:
    """The population (candidates and results, in evaluation order, without timings) and the hall of fame."""
    snap = json.loads((cwd / "mlruns" / "searches" / name / "checkpoint.json").read_text())
    assert snap["status"] == "finished"
    pop = [(e["cand"], {k: v for k, v in e["result"].items() if k != "wall_time"})
           for e in snap["controller"]["population"]]
    fame = sorted(pop, key=lambda e: -e[1]["val_acc"] if e[1]["status"] in ("ok", "hurdle") else 0.0)[:10]
    return pop, [c["key"] for c, _ in fame]


def interrupt(cwd: Path, name: str, sig: int, after: int) -> subprocess.Popen:
    """Start the search, whose training after the first ``after`` never ends (faults.counting), and send ``sig``
    once those ``after`` results are in the journal: then exactly one candidate is in training, whatever the load."""
    log = open(cwd / f"{name}.out", "w")
    proc = subprocess.Popen(cli(*FLAGS, "--name", name), cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            env=cli_env(GP_COUNT_LOG=str(cwd / f"{name}.log"), GP_COUNT_HOLD=str(after)))
    journal = cwd / "mlruns" / "searches" / name / "journal.jsonl"
    stuck = time.monotonic() + 600                                   # a guard against a hang, not a measurement
    while not (journal.exists() and journal.read_text().count('{"r"') >= after):
        assert proc.poll() is None and time.monotonic() < stuck, (cwd / f"{name}.out").read_text()
        time.sleep(0.05)
    proc.workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc


def gone(pids: list[int], within: float = 60.0) -> bool:  # a worker checks its parent every second
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    cwd = tmp_path_factory.mktemp("unbroken")
    run_cli(cwd, "whole")
    return final(cwd, "whole")


def trained_twice(cwd: Path, name: str) -> list[str]:
    counts = Counter((cwd / f"{name}.log").read_text().splitlines())
    return [text for text, n in counts.items() if n > 1]


def children(cwd: Path, name: str) -> list[Any]:
    from mlflow import MlflowClient
    client = MlflowClient(f"sqlite:///{cwd}/mlruns/mlflow.db")
    exp = client.get_experiment_by_name(name)
    return [r for r in client.search_runs([exp.experiment_id], "tags.mlflow.parentRunId != ''", max_results=1000)
            if r.data.tags.get("gp.key")]


def test_kill_9_then_resume_loses_and_repeats_nothing(tmp_path: Path, unbroken: tuple[list, list]) -> None:
    proc = interrupt(tmp_path, "killed", signal.SIGKILL, after=12)
    assert proc.returncode == -signal.SIGKILL
    assert proc.workers and gone(proc.workers)                        # workers do not outlive the controller
    before = results(tmp_path, "killed")
    assert len(before) == 12                                          # the 13th was in training
    run_cli(tmp_path, "killed", "--resume")

    after = results(tmp_path, "killed")
    assert after[:len(before)] == before                              # nothing completed was lost
    assert sorted(r["cand"]["cid"] for r in after) == list(range(EVALS))      # each candidate recorded once
    # Only the candidate in training at the kill was trained again.
    pop, _ = final(tmp_path, "killed")
    assert trained_twice(tmp_path, "killed") == [pop[12][0]["text"]]
    assert final(tmp_path, "killed") == unbroken                      # same population, same hall of fame
    keys = [r.data.tags["gp.key"] for r in children(tmp_path, "killed")]
    assert len(keys) == EVALS and len(set(keys)) == EVALS             # one MLflow child run per candidate


def test_ctrl_c_stops_gracefully_and_resumes(tmp_path: Path, unbroken: tuple[list, list]) -> None:
    proc = interrupt(tmp_path, "ctrlc", signal.SIGINT, after=10)
    out = (tmp_path / "ctrlc.out").read_text()
    assert proc.returncode == 130, out
    assert "ctrlc: interrupted after" in out and "--resume trains them" in out and "Traceback" not in out
    snap = json.loads((tmp_path / "mlruns" / "searches" / "ctrlc" / "checkpoint.json").read_text())
    # In flight at --workers 1: the lookahead, CHUNKS_AHEAD chunks of (here one-training) candidates, or the budget.
    assert snap["status"] == "interrupted" and snap["lookahead"] == CHUNKS_AHEAD * ParallelConfig.chunk
    assert len(snap["controller"]["inflight"]) == min(snap["lookahead"], EVALS - 10)

    resumed = run_cli(tmp_path, "ctrlc", "--resume")
    assert "ctrlc: finished after 40 evaluations" in resumed.stdout
    assert trained_twice(tmp_path, "ctrlc") == [final(tmp_path, "ctrlc")[0][10][0]["text"]]  # the one in training
    assert final(tmp_path, "ctrlc") == unbroken


def test_an_unfinished_search_is_not_overwritten_by_accident(tmp_path: Path) -> None:
    interrupt(tmp_path, "stopped", signal.SIGKILL, after=3)
    proc = subprocess.run(cli(*FLAGS, "--name", "stopped"), cwd=tmp_path, capture_output=True, text=True,
                          env=cli_env(GP_COUNT_LOG=str(tmp_path / "x.log")), timeout=120)
    assert proc.returncode == 2
    assert "has an unfinished checkpoint" in proc.stderr and "add --resume" in proc.stderr
    changed = subprocess.run(cli(*FLAGS, "--name", "stopped", "--seed", "4", "--resume"), cwd=tmp_path,
                             capture_output=True, text=True, env=cli_env(GP_COUNT_LOG=str(tmp_path / "x.log")),
                             timeout=120)
    assert changed.returncode == 2 and "--resume: seed is '3' in the checkpoint but '4' now" in changed.stderr


def test_candidates_that_finished_out_of_turn_survive_a_kill_and_are_not_trained_again(tmp_path: Path) -> None:
    # Two workers, one training per candidate in chunks of one; the reference (candidate 0) waits on a gate, so the
    # candidates after it finish first and wait, journaled, for their turn to be told.
    flags = [*TINY_FLAGS, "--workers", "2", "--max-evals", "20", "--population", "10", "--seed", "3",
             "--no-tracking", "--set", "parallel.chunk=1", "--set", "evaluation.function=tests.gp_backprop.faults:faulty"]
    gate, reference = tmp_path / "gate", "left(g, g)"
    gate.mkdir()

    def env(session: str) -> dict[str, str]:
        return cli_env(GP_FAULTS=json.dumps({reference: "gate"}), GP_GATE_DIR=str(gate),
                       GP_COUNT_LOG=str(tmp_path / f"{session}.log"))
    (gate / reference).touch()
    whole = subprocess.run(cli(*flags, "--name", "whole"), cwd=tmp_path, env=env("whole"), capture_output=True,
                           text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    (gate / reference).unlink()

    proc = subprocess.Popen(cli(*flags, "--name", "gated"), cwd=tmp_path, env=env("first"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal, log = tmp_path / "mlruns" / "searches" / "gated" / "journal.jsonl", tmp_path / "first.log"
    stuck = time.monotonic() + 600                                   # a guard against a hang, not a measurement
    while True:
        # The journal is read before the log, so when it holds as many waiting results as the log has trainings
        # begun (bar the gated reference), every one of those began trainings is journaled: the proposals stop at
        # the lookahead while candidate 0 is in flight, so this state comes and stays.
        held = journal.read_text().count('{"h"') if journal.exists() else 0
        begun = log.read_text().splitlines() if log.exists() else []
        if held >= 3 and held == len(begun) - begun.count(reference):
            break
        assert proc.poll() is None and time.monotonic() < stuck
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=120)
    assert '{"r"' not in journal.read_text()                          # none was told: candidate 0 never ended
    waiting = set(begun) - {reference}                                 # finished and journaled, not told

    (gate / reference).touch()
    resumed = subprocess.run(cli(*flags, "--name", "gated", "--resume"), cwd=tmp_path, env=env("resumed"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    retrained = set((tmp_path / "resumed.log").read_text().splitlines())
    assert reference in retrained and len(waiting) >= 3 and not waiting & retrained
    assert final(tmp_path, "gated") == final(tmp_path, "whole")
