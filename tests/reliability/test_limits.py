"""Input limits (issue 15, faults 6 and 7): each bad input is one line naming the flag of the command that was run,
exit 2, before anything is written or started; a reference seed that diverges stops the search as a broken task; and
loky's leak warning does not reach the terminal after a kill -9."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gp_backprop.conftest import cli_env
from tests.reliability.conftest import evolve, last_line, population, snapshot


def _run(cwd: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"gp_backprop.{module}", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=cli_env())


@pytest.mark.parametrize("module, args, line", [
    ("evolve", ["--workers", "1000"], "evolve: error: --workers 1000 is more than 4 per CPU core"),
    ("evolve", ["--set", "task.lr=inf"], "evolve: error: flags: task.lr = inf must be a finite number"),
    ("evolve", ["--set", "evaluation.timeout=nan"], "evolve: error: flags: evaluation.timeout = nan is not a"),
    ("evolve", ["--name", ".."], "evolve: error: name '..' may hold only letters"),
    ("evolve", ["--dataset", "cifar10"], "evolve: error: task.dataset = 'cifar10': cifar10 needs a data folder: "
                                         "set root (--set task.data_root=DIR)"),
    ("evaluate", ["g", "--lr", "inf"], "evaluate: error: argument --lr: must be a positive finite number"),
    ("reevaluate", ["--search", "s", "--timeout", "inf"], "reevaluate: error: argument --timeout: 'inf' is not a "
                                                         "duration; use seconds or e.g. 90s, 10m, 2h"),
    ("reevaluate", ["--search", "s", "--timeout", "10m", "--top", "0"],   # 10m is a duration: --top is the error
     "reevaluate: error: argument --top: must be a positive finite number, got '0'"),
])
def test_a_bad_input_is_one_line_naming_its_flag(tmp_path: Path, module: str, args: list[str], line: str) -> None:
    proc = _run(tmp_path, module, *args)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith(line), proc.stderr
    assert "--data-root" not in proc.stderr
    assert not (tmp_path / "mlruns").exists()                          # nothing written, no worker started


def test_a_diverging_reference_is_a_broken_task(tmp_path: Path) -> None:
    proc = evolve(tmp_path, "s", "--set", "task.lr=1e6", "--set", "evaluation.function=evaluators:evaluate")
    assert proc.returncode == 2, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith("evolve: error: the task is broken: the backprop seed cannot train (status diverged: ")
    assert line.endswith("check the [task] settings, e.g. a smaller learning rate: --set task.lr=0.01")
    snap = snapshot(tmp_path, "s")
    assert snap["status"] == "failed"
    statuses = [(e["cand"]["origin"], e["result"]["status"]) for e in snap["controller"]["population"]]
    assert statuses[0] == ("reference", "diverged")                   # recorded, then the search stopped


def test_no_leak_warning_after_kill_9(interrupted: Path, unbroken: list) -> None:
    err = (interrupted / "s.err").read_text()                          # the killed search's terminal, to the end
    assert "leaked" not in err and "resource_tracker" not in err, err
    resumed = evolve(interrupted, "s", "--resume")
    assert resumed.returncode == 0 and "leaked" not in resumed.stderr, resumed.stderr
    assert population(interrupted, "s") == unbroken
