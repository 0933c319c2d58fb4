"""Graceful stops (issue 15, faults 4 and 5): SIGTERM to the whole process group (a scheduler, `docker stop`) is
handled like Ctrl-C, and a write that fails (a real RLIMIT_FSIZE: the disk is "full") stops the search with one line;
either way --resume afterwards ends where an unbroken search ends."""
from __future__ import annotations

import os
import resource
import signal
from pathlib import Path

from tests.reliability.conftest import (
    evolve, gone, last_line, population, snapshot, start, wait_results, children)


def test_sigterm_to_the_process_group_stops_gracefully(tmp_path: Path, unbroken: list) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracked = ["--tracking-uri", uri, "--set", "tracking.enabled=true"]
    proc = start(tmp_path, "s", *tracked, start_new_session=True)  # in its own process group
    wait_results(tmp_path, "s", 10, proc)
    kids = children(proc.pid)
    os.killpg(proc.pid, signal.SIGTERM)                  # the controller, its workers and loky's tracker
    assert proc.wait(timeout=120) == 143
    assert gone(kids)
    out, err = (tmp_path / "s.out").read_text(), (tmp_path / "s.err").read_text()
    assert "s: interrupted after" in out and "--resume trains them" in out and "Traceback" not in err, err
    snap = snapshot(tmp_path, "s")
    assert snap["status"] == "interrupted"
    assert all(e["result"]["status"] == "ok" for e in snap["controller"]["population"])  # no worker died first
    from mlflow import MlflowClient
    assert MlflowClient(uri).get_run(snap["tracking"]["run_id"]).info.status == "KILLED"

    resumed = evolve(tmp_path, "s", "--resume", *tracked)
    assert resumed.returncode == 0, resumed.stderr
    assert population(tmp_path, "s") == unbroken


def _file_limit(size: int):
    def limit() -> None:  # in the child: writes past `size` bytes fail with EFBIG instead of killing it (SIGXFSZ)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_a_full_disk_stops_with_one_line_and_loses_nothing(tmp_path: Path, unbroken: list) -> None:
    full = evolve(tmp_path, "s", preexec_fn=_file_limit(24_000))    # ~ the checkpoint after a dozen results
    assert full.returncode == 2, full.stderr
    line = last_line(full.stderr)
    assert line.startswith("evolve: error: cannot write mlruns/searches/s/") and "(File too large)" in line, line
    assert line.endswith("resume with --resume once fixed") and "Traceback" not in full.stderr, full.stderr
    assert "s: write error after" in full.stdout and "--resume --name s)" in full.stdout  # the summary
    assert 0 < len(snapshot(tmp_path, "s")["controller"]["population"]) < 30

    resumed = evolve(tmp_path, "s", "--resume")                     # space freed
    assert resumed.returncode == 0, resumed.stderr
    assert population(tmp_path, "s") == unbroken
