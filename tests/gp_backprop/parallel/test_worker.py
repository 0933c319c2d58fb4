"""Worker side (issue 5): in a Dask worker the training thread keeps its priority while the event loop yields, and
loky workers are not restarted during a search."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from gp_backprop.search import run_search
from tests.gp_backprop.conftest import ROOT, cli_env, tiny_config

# run_one from an executor thread, as a Dask worker calls it; a subprocess, so this test's own threads stay as they are.
SCRIPT = textwrap.dedent("""
    import os, threading
    from concurrent.futures import ThreadPoolExecutor
    from evaluators.task import TaskSpec
    from gp_backprop.parallel.worker import run_one

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # CI may itself run under nice

    def train():
        result, _ = run_one("tests.gp_backprop.faults:faulty", "left(g, g)", TaskSpec())
        assert result.status == "ok", result
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = ThreadPoolExecutor(1).submit(train).result()
    print(base, mine, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are per thread on Linux only")
def test_run_one_in_an_executor_thread_lowers_the_event_loop_not_the_training() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    base, training, loop = map(int, out.stdout.split())
    assert training == base and loop == 19


def test_loky_workers_live_through_a_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loky restarts a worker whose memory grew by more than it allows after the worker's first call (its warm-up);
    training must stay within that, or each restart would cost seconds of imports. 200 real trainings on 2 workers
    come from 2 processes."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))           # the workers import tests.gp_backprop.faults
    cfg = tiny_config(tmp_path, space={"population": 20}, budget={"max_evals": 200}, parallel={"workers": 2},
                      evaluation={"function": "tests.gp_backprop.faults:whose"})
    out = run_search(cfg, progress=False)
    assert len(out.controller.population) == 200
    pids = Counter(e.result.message for e in out.controller.population)
    assert len(pids) == 2 and all(pid.isdigit() for pid in pids), pids
