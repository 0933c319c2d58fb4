"""A dataset plug-in works wherever a dataset name does: evolve on loky and on Dask workers (the spec travels as
text, each worker imports the module), reevaluate, evaluate; a plug-in that cannot be used is one line, exit 2."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gp_backprop.evaluate import main as evaluate_cli
from gp_backprop.reevaluate import main as reevaluate
from tests.gp_backprop.conftest import cli, cli_env

PLUGIN = "tests.plugin_data:tiny"
TINY = ["--max-evals", "6", "--population", "3", "--epochs", "1", "--set", "task.model.widths=[8]", "--set",
        "task.batch_size=8", "--no-progress"]


def evolve(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # cli_env puts the repository on PYTHONPATH: the search and its workers import tests.plugin_data from there.
    return subprocess.run(cli(*TINY, *args), cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=300)


def trained_on_plugin(cwd: Path, name: str) -> None:
    """Every candidate trained (ok or diverged), on the plug-in's 30 validation samples (synthetic has 128)."""
    snap = json.loads((cwd / "mlruns" / "searches" / name / "checkpoint.json").read_text())
    results = [e["result"] for e in snap["controller"]["population"]]
    assert len(results) == 6 and {r["status"] for r in results} <= {"ok", "diverged"}
    assert all(round(r["val_acc"] * 30, 6).is_integer() for r in results)
    assert all(len(r["val_curve"]) == 1 for r in results if r["status"] == "ok")    # really trained, one epoch


def test_a_search_on_loky_workers_then_its_funnel(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = evolve(in_tmp, "--dataset", PLUGIN, "--workers", "2", "--name", "plug")
    assert proc.returncode == 0, proc.stderr
    assert "plug: finished after 6 evaluations" in proc.stdout and "on 2 workers" in proc.stdout
    trained_on_plugin(in_tmp, "plug")
    capsys.readouterr()
    # The funnel rebuilds the task from MLflow's params, dataset spec included, and trains it on loky workers.
    assert reevaluate(["--search", "plug", "--top", "1", "--seeds", "2", "--setups", "A1", "--workers", "2",
                       "--no-tracking"]) == 0
    out = capsys.readouterr().out
    assert "1 finalists + backprop (reference), g/||g||_F" in out and "error" not in out


def test_a_search_on_a_dask_local_cluster(in_tmp: Path) -> None:
    proc = evolve(in_tmp, "--set", f"task.dataset={PLUGIN}", "--backend", "dask", "--workers", "2",
                  "--name", "plug-dask", "--no-tracking")
    assert proc.returncode == 0, proc.stderr
    assert "plug-dask: finished after 6 evaluations" in proc.stdout
    trained_on_plugin(in_tmp, "plug-dask")


@pytest.mark.parametrize("dataset, message", [
    ("tests.no_such_module:tiny", "cannot import 'tests.no_such_module'"),
    ("tests.plugin_data:tinny", "has no function 'tinny'; did you mean 'tests.plugin_data:tiny'?"),
    ("tests.plugin_data:raises", "raised FileNotFoundError: no data under None; fix the function"),
    ("tests.plugin_data:wrong_type", "returned dict, not evaluators.data.Splits"),
])
def test_a_bad_plugin_is_one_line_and_exit_code_2(dataset: str, message: str, in_tmp: Path) -> None:
    proc = evolve(in_tmp, "--dataset", dataset, "--workers", "1", "--name", "bad", "--no-tracking")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("evolve: error: ") and f"dataset plug-in {dataset!r}" in proc.stderr
    assert message in proc.stderr
    assert not (in_tmp / "mlruns" / "searches" / "bad").exists()                   # nothing written


def test_evaluate_trains_on_a_plugin_and_rejects_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate_cli(["left(g, g)", "--task", PLUGIN, "--widths", "8", "--epochs", "2", "--seeds", "1"]) == 0
    assert f"task: {PLUGIN}, mlp" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        evaluate_cli(["left(g, g)", "--task", "tests.plugin_data:raises"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "dataset plug-in 'tests.plugin_data:raises'" in err
