"""Dask distributed (issue 5): a small search runs on a real LocalCluster through --backend dask --scheduler."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gp_backprop.evolve import main
from tests.gp_backprop.conftest import TINY_FLAGS


@pytest.fixture
def dask_scheduler() -> Iterator[str]:
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_a_search_runs_on_a_dask_cluster(dask_scheduler: str, in_tmp: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY_FLAGS, "--name", "on-dask", "--backend", "dask", "--scheduler", dask_scheduler,
                 "--max-evals", "12", "--population", "6", "--no-tracking"]) == 0
    out = capsys.readouterr().out
    assert "on-dask: finished after 12 evaluations" in out and "on 2 workers" in out
    snap = json.loads((in_tmp / "mlruns" / "searches" / "on-dask" / "checkpoint.json").read_text())
    pop = snap["controller"]["population"]
    assert len(pop) == 12 and sorted(e["cand"]["cid"] for e in pop) == list(range(12))
    assert {e["result"]["status"] for e in pop} <= {"ok", "diverged"}
    assert pop[0]["result"]["val_curve"] or pop[1]["result"]["val_curve"]   # really trained, epoch by epoch
