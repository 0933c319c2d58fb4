"""A store that fails mid-search (issue 14), on real components: a sqlite database another connection locks, and an
``mlflow server`` killed and started again. The search goes on with one warning line and no MLflow noise, the end
does not hang, the summary says how many runs reached MLflow, and after ``--resume`` every candidate has exactly
one child run."""
from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

from mlflow import MlflowClient

from tests.gp_backprop.conftest import ROOT, TINY_FLAGS, cli, cli_env
from tests.gp_backprop.tracking.conftest import Server

WARNING = "warning: the MLflow store at"
END = 240   # seconds: generous, against a hang (the writer gives up after 30 s at most), not a timing assertion


def search(tmp_path: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(cli(*TINY_FLAGS, "--workers", "1", "--population", "8", *flags), cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + END
    while not condition():
        assert proc.poll() is None, f"the search ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.2)


def count(db: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


CHILDREN = "SELECT count(*) FROM tags WHERE key = 'gp.key'"


def tracked(out: str) -> tuple[int, int, int]:
    """(reached MLflow, evaluations, waiting for --resume) from the summary."""
    m = re.search(r"(\d+) of (\d+) child runs reached MLflow(?:; (\d+) wait for --resume)?", out)
    assert m, out
    return int(m[1]), int(m[2]), int(m[3] or 0)


def one_run_each(uri: str, name: str, evaluations: int) -> None:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    parent = client.search_runs([exp.experiment_id], "tags.`gp.kind` = 'search'")[0]
    kids = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                              max_results=5000)
    keys = Counter(r.data.tags["gp.key"] for r in kids)
    assert len(keys) == evaluations and set(keys.values()) == {1}      # every candidate, none twice
    assert sorted(int(r.data.metrics["evaluation"]) for r in kids) == list(range(1, evaluations + 1))
    assert parent.info.status == "FINISHED"


def test_a_locked_sqlite_store_is_caught_up_while_the_search_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    proc = search(tmp_path, "--name", "locked", "--max-evals", "5000", "--time-budget", "35s")
    wait_for(lambda: count(db, CHILDREN) >= 3, "child runs", proc)
    lock = sqlite3.connect(db, timeout=30)
    # Another writer holds the database for 15 s: well past the writer's 2 s busy wait plus the 5 s of failures before
    # its one warning, whatever the machine's load; the search (35 s) outlasts the lock, so every run catches up.
    lock.execute("BEGIN EXCLUSIVE")
    time.sleep(15)
    lock.rollback()
    lock.close()
    out, err = proc.communicate(timeout=END)
    assert proc.returncode == 0, err
    assert err.count(WARNING) == 1 and "runs queued" in err, err
    # one warning; at the end, a line saying a large backlog is being written, when there is one
    lines = [line for line in err.splitlines() if not re.fullmatch(r"Writing \d+ queued runs to MLflow\.\.\.", line)]
    assert "Traceback" not in err and "SQLAlchemy" not in err and len(lines) == 1, err
    reached, evaluations, waiting = tracked(out)
    assert reached == evaluations and waiting == 0
    one_run_each(f"sqlite:///{db}", "locked", evaluations)
    # Provenance: who ran it, from which file, at which commit of this checkout.
    client = MlflowClient(f"sqlite:///{db}")
    parent = client.search_runs([client.get_experiment_by_name("locked").experiment_id], "tags.`gp.kind` = 'search'")[0]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    tags = parent.data.tags
    assert tags["mlflow.source.git.commit"] == head and tags["mlflow.user"]
    assert tags["mlflow.source.name"].endswith("evolve.py")


def test_a_killed_server_is_one_warning_and_resume_writes_the_rest(tmp_path: Path) -> None:
    server = Server(tmp_path)
    url = server.start()
    db = tmp_path / "server.db"
    try:
        # One training at a time (chunk 1): batched tiny trainings would queue thousands of runs in 15 s, and the
        # end reads every run back through the server
        proc = search(tmp_path, "--name", "flaky", "--tracking-uri", url, "--max-evals", "5000",
                      "--time-budget", "15s", "--set", "parallel.chunk=1")
        wait_for(lambda: count(db, CHILDREN) >= 3, "child runs", proc)
        server.kill()
        out, err = proc.communicate(timeout=END)   # the end does not hang on the dead server
        assert proc.returncode == 0, err
        assert err.count(WARNING) == 1 and "runs queued" in err and "Traceback" not in err, err
        assert "View run" not in out
        reached, evaluations, waiting = tracked(out)
        assert waiting > 0 and reached + waiting == evaluations

        server.start()
        done = subprocess.run(cli("--resume", "--name", "flaky", "--no-progress"), cwd=tmp_path, env=cli_env(),
                              capture_output=True, text=True, timeout=END)
        assert done.returncode == 0, done.stderr
        reached, evaluations, waiting = tracked(done.stdout)
        assert reached == evaluations and waiting == 0 and WARNING not in done.stderr
        one_run_each(url, "flaky", evaluations)
    finally:
        server.kill()
