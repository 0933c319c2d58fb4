"""A tracking store slower than training loses no result: every candidate still gets its child run, with its own
record, written after the search if need be. (How little the search's own machinery costs the workers is measured,
not tested: ``benchmarks/search_throughput.py --skip scaling,tracking,dask`` prints the worker utilization.)"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gp_backprop.search import run_search
from gp_backprop.tracking.sinks import SqlSink
from tests.gp_backprop.conftest import ROOT, tiny_config


def test_a_slow_tracking_store_loses_no_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("GP_SLEEP", "0.05")
    write = SqlSink.write

    def slow(self: SqlSink, records: list) -> None:  # a store slower than training (a distant server)
        time.sleep(0.1 * len(records))
        write(self, records)

    monkeypatch.setattr(SqlSink, "write", slow)
    cfg = tiny_config(tmp_path, space={"population": 20}, budget={"max_evals": 60}, parallel={"workers": 2},
                      evaluation={"function": "tests.gp_backprop.faults:sleeping"}, tracking={"enabled": True})
    out = run_search(cfg, progress=False)
    assert out.status == "finished" and out.tracking_failures == 0
    children = f"tags.mlflow.parentRunId = '{out.run_id}'"
    runs = MlflowClient(cfg.tracking.uri).search_runs([out.experiment_id], children, max_results=1000)
    logged = {r.data.params["key"]: (r.data.metrics["evaluation"], r.data.metrics["fitness"], r.info.status)
              for r in runs}
    assert logged == {e.cand.key: (e.index + 1, round(e.fitness, 4), "FINISHED") for e in out.controller.population}
    assert len(logged) == 60
