"""Fixtures for the search tests: tiny searches (synthetic data, 2 epochs, one 16-unit layer) in a temporary folder."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from gp_backprop.config import SearchConfig, build

ROOT = Path(__file__).resolve().parents[2]

# Seconds, not minutes: 4-class synthetic data, 2 epochs, one hidden layer of 16. One training per candidate (no lr
# tuning, no lr grid, no extra seeds): these tests are about the engine; tests/gp_backprop/search/test_protocol.py
# is about the fitness protocol.
TINY_TASK = {"dataset": "synthetic", "epochs": 2, "model": {"widths": [16]}}
ONE_TRAINING = {"tune": False, "lr_grid": [1.0], "lr_reach": 0, "extra_seeds": 0}
TINY_FLAGS = ["--dataset", "synthetic", "--epochs", "2", "--set", "task.model.widths=[16]", "--no-progress",
              "--no-tune", "--set", "fitness.lr_grid=[1.0]", "--set", "fitness.lr_reach=0", "--set", "fitness.extra_seeds=0"]


def tiny_config(tmp_path: Path, **groups: Any) -> SearchConfig:
    """A tiny search whose records all go under ``tmp_path``; ``groups`` override sections (``space={...}``)."""
    d: dict[str, Any] = {
        "name": "tiny", "task": dict(TINY_TASK),
        "space": {"population": 8}, "budget": {"max_evals": 12}, "parallel": {"workers": 1},
        "fitness": dict(ONE_TRAINING),
        "tracking": {"enabled": False, "uri": f"sqlite:///{tmp_path}/mlruns/mlflow.db",
                     "artifacts": str(tmp_path / "mlruns" / "artifacts"),
                     "checkpoint_dir": str(tmp_path / "mlruns" / "searches"), "metrics_every": 0.5},
    }
    for k, v in groups.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and isinstance(d.get(k), dict) else v
    return build([("test", d)])


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: the repository on the path, so workers can import tests.gp_backprop."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gp_backprop.evolve", *args]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so the default ``mlruns/`` paths land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
