"""The package's public surface: each name in ``__all__`` is the object its home module defines and works when used
through the package alone, and importing the package stays light."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import gp_backprop
from evaluators.task import EvalResult

# public name -> the module that defines it (what a user reading the source finds), written out here on purpose:
# the package's lazy table must agree with it.
HOMES = {
    "SearchConfig": "config", "SpaceConfig": "config", "BudgetConfig": "config", "EvaluationConfig": "config",
    "ParallelConfig": "config", "TrackingConfig": "config", "ConfigError": "config", "build": "config",
    "PRESETS": "presets", "SELECTIONS": "search.selection",
    "Controller": "search.controller", "Candidate": "search.controller", "Entry": "search.controller",
    "RunFolder": "search.checkpoint", "run_search": "search.loop", "Outcome": "search.loop",
    "hall_of_fame": "search.hall_of_fame",
    "make_backend": "parallel", "BACKENDS": "parallel", "LokyBackend": "parallel.loky", "DaskBackend": "parallel.dask",
    "Tracker": "tracking.writer",
}


def test_all_lists_exactly_the_documented_names() -> None:
    assert sorted(gp_backprop.__all__) == sorted(HOMES) and dir(gp_backprop) == gp_backprop.__all__
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        gp_backprop.nope  # noqa: B018


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_public_name_is_its_home_modules_object(name: str) -> None:
    assert getattr(gp_backprop, name) is getattr(importlib.import_module(f"gp_backprop.{HOMES[name]}"), name)


def test_the_public_names_run_a_search_step_by_step(tmp_path: Path) -> None:
    """A user's session through ``gp_backprop.*`` only: configure, propose and tell, rank, checkpoint, reload."""
    g = gp_backprop
    cfg = g.build([("api", {"space": {"population": 3}, "budget": {"max_evals": 5}})])
    assert isinstance(cfg, g.SearchConfig) and isinstance(cfg.space, g.SpaceConfig)
    assert (cfg.space.population, cfg.budget, cfg.parallel, cfg.tracking, cfg.evaluation) == \
        (3, g.BudgetConfig(max_evals=5), g.ParallelConfig(), g.TrackingConfig(), g.EvaluationConfig())
    with pytest.raises(g.ConfigError, match="space.population = 0"):
        g.build([("api", {"space": {"population": 0}})])
    assert g.build([("p", g.PRESETS["paper-a1"])]).task.model.arch == "wrn"
    assert set(g.SELECTIONS) >= {"top_n", "tournament"} and cfg.space.selection in g.SELECTIONS
    assert g.BACKENDS == {"loky": g.LokyBackend, "dask": g.DaskBackend}

    ctl = g.Controller(cfg.space, cfg.seed)
    for acc in (0.5, 0.9, 0.7):
        cand = ctl.propose()
        assert isinstance(cand, g.Candidate)
        ctl.tell(cand.cid, EvalResult("ok", val_acc=acc))
    assert all(isinstance(e, g.Entry) for e in ctl.population)
    top, reference = g.hall_of_fame(ctl, 2)
    assert [r.val_acc for r in top] == [0.9, 0.7] and (reference.rank, reference.val_acc) == (3, 0.5)

    folder = g.RunFolder(tmp_path / "run")
    folder.reset()
    folder.save({"status": "running", "elapsed": 0.0, "config": cfg.to_dict()}, json.dumps(ctl.state()))
    folder.close()
    snap, events = g.RunFolder(tmp_path / "run").load()
    again = g.Controller.from_state(cfg.space, cfg.seed, snap["controller"])
    assert [e.cand for e in again.population] == [e.cand for e in ctl.population] and events == []


def test_import_loads_neither_mlflow_nor_dask_nor_torch() -> None:
    code = "import sys, gp_backprop; print(sorted(m for m in ('mlflow', 'distributed', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
