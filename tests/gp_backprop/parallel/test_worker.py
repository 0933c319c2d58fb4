"""Worker side (issue 5): in a Dask worker the training thread keeps its priority while the event loop yields."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.gp_backprop.conftest import cli_env

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
