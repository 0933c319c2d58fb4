"""Faults (issue 5): a rule that raises, a NaN result, a worker killed mid-evaluation and a timeout are each
recorded with their status, the search completes, and every proposed candidate is recorded exactly once."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gp_backprop.search.checkpoint import RunFolder
from gp_backprop.search.controller import Controller
from gp_backprop.search import run_search
from tests.gp_backprop.conftest import ROOT, tiny_config

EXPECTED = {"raise": "error", "nan": "diverged", "kill": "crashed", "sleep": "timeout", "ok": "ok"}


def test_every_fault_is_recorded_and_the_search_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_config(tmp_path, space={"population": 12}, budget={"max_evals": 12},
                      parallel={"workers": 2},
                      evaluation={"function": "tests.gp_backprop.faults:faulty", "timeout": 3.0},
                      tracking={"enabled": True})
    # The initial population does not depend on results, so the test knows the first 12 candidates in advance.
    probe = Controller(cfg.space, cfg.seed)
    texts = [probe.propose().text for _ in range(12)]
    plan = {texts[1]: "raise", texts[2]: "nan", texts[3]: "kill", texts[4]: "sleep", texts[5]: "kill"}
    monkeypatch.setenv("GP_FAULTS", json.dumps(plan))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))        # the workers import tests.gp_backprop.faults

    out = run_search(cfg, progress=False)             # the 600 s sleeper is stopped at its 3 s timeout

    ctl = out.controller
    assert out.status == "finished" and not ctl.inflight
    assert sorted(e.cand.cid for e in ctl.population) == list(range(12))          # proposed == recorded
    assert ctl.proposals == len(ctl.population) + ctl.cache_hits
    for e in ctl.population:
        assert e.result.status == EXPECTED[plan.get(e.cand.text, "ok")], (e.cand.text, e.result)
        if e.result.status != "ok":
            assert e.fitness == 0.0 and e.result.message
    by_status = {e.result.status: e for e in ctl.population}
    assert "injected failure" in by_status["error"].result.message
    assert "timeout" in by_status["timeout"].result.message

    # The checkpoint holds the same population, and MLflow a child run per candidate with its status.
    snap, events = RunFolder(cfg.run_dir).load()
    assert snap["status"] == "finished" and events == []
    assert [e["result"]["status"] for e in snap["controller"]["population"]] == \
        [e.result.status for e in ctl.population]
    from mlflow import MlflowClient
    client = MlflowClient(cfg.tracking.uri)
    runs = client.search_runs([out.experiment_id], f"tags.mlflow.parentRunId = '{out.run_id}'")
    assert sorted(r.data.params["status"] for r in runs) == sorted(e.result.status for e in ctl.population)
    assert {r.info.status for r in runs if r.data.params["status"] in ("crashed", "timeout", "error")} == {"FAILED"}
