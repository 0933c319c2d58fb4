"""Search and command-line tools of gp-backprop: the Backprop Evolution search (Alber et al. 2018, §3) with its
controller, parallel evaluation, MLflow tracking and crash-safe checkpoints (``python -m gp_backprop.evolve``), and
``python -m gp_backprop.evaluate`` / ``gp_backprop.ftprop`` for single equations and FTPROP-MB baselines.

Imports are lazy: ``import gp_backprop`` loads neither MLflow nor Dask nor torch, so the CLIs start fast.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_API = {
    "SearchConfig": "config", "SpaceConfig": "config", "BudgetConfig": "config", "EvaluationConfig": "config",
    "ParallelConfig": "config", "TrackingConfig": "config", "ConfigError": "config", "build": "config",
    "PRESETS": "presets", "SELECTIONS": "search",
    "Controller": "search", "Candidate": "search", "Entry": "search", "RunFolder": "search",
    "run_search": "search", "Outcome": "search", "hall_of_fame": "search",
    "make_backend": "parallel", "BACKENDS": "parallel", "LokyBackend": "parallel", "DaskBackend": "parallel",
    "Tracker": "tracking",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'gp_backprop' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gp_backprop.{_API[name]}"), name)


def __dir__() -> list[str]:
    return __all__
