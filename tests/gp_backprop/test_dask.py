"""Dask distributed (issue 5): a small search runs on a real LocalCluster, given by --scheduler or started by the
search itself (--backend dask alone), where a timed-out candidate's worker is restarted and the search goes on."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gp_backprop.controller import Controller
from gp_backprop.evolve import main
from gp_backprop.search import run_search
from tests.gp_backprop.conftest import ROOT, TINY_FLAGS, tiny_config


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


def test_a_search_starts_its_own_local_cluster_and_survives_a_timeout(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_config(tmp_path, space={"population": 8}, budget={"max_evals": 8},
                      parallel={"workers": 2, "backend": "dask"},
                      evaluation={"function": "tests.gp_backprop.faults:faulty", "timeout": 3.0})
    probe = Controller(cfg.space, cfg.seed)
    texts = [probe.propose().text for _ in range(8)]
    plan = {texts[2]: "sleep", texts[3]: "raise"}
    monkeypatch.setenv("GP_FAULTS", json.dumps(plan))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))        # the workers import tests.gp_backprop.faults

    out = run_search(cfg, progress=False)
    ctl = out.controller
    assert out.status == "finished" and out.workers == 2
    assert sorted(e.cand.cid for e in ctl.population) == list(range(8))
    expected = {"sleep": "timeout", "raise": "error"}
    assert [e.result.status for e in ctl.population] == \
        [expected.get(plan.get(e.cand.text, ""), "ok") for e in ctl.population]
