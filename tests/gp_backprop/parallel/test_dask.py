"""Dask distributed (issue 5): a small search runs on a real LocalCluster, given by --scheduler or started by the
search itself (--backend dask alone), where a timed-out candidate's worker is restarted and the search goes on; run
twice, it gives the same population."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluators.task import EvalResult, TaskSpec
from gp_backprop.config import ParallelConfig, SearchConfig
from gp_backprop.parallel import make_backend
from gp_backprop.search.controller import Controller, sanitize
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
    # Really trained: each ok candidate has one validation accuracy per epoch, and every result is the one the same
    # text gets on loky (training is deterministic given the task, whichever process runs it).
    task = TaskSpec.from_dict(snap["config"]["task"])
    ok = [e["result"] for e in pop if e["result"]["status"] == "ok"]
    assert ok and all(len(r["val_curve"]) == task.epochs == 2 for r in ok)
    on_loky = train_on_loky([e["cand"]["text"] for e in pop], task)
    same = ("status", "val_acc", "test_acc", "val_curve", "loss_curve")   # compared as JSON text: NaN == NaN
    assert [json.dumps([e["result"][k] for k in same]) for e in pop] == \
           [json.dumps([sanitize(r).to_dict()[k] for k in same]) for r in on_loky]
    # The same settings again give the same population: results are told in proposal order (issue 23).
    assert main([*TINY_FLAGS, "--name", "again", "--backend", "dask", "--scheduler", dask_scheduler,
                 "--max-evals", "12", "--population", "6", "--no-tracking"]) == 0
    again = json.loads((in_tmp / "mlruns" / "searches" / "again" / "checkpoint.json").read_text())
    assert timeless(again["controller"]["population"]) == timeless(pop)


def timeless(population: list[dict]) -> list[tuple[dict, str]]:
    """Each entry's candidate and result without its timing (as JSON text: NaN == NaN)."""
    return [(e["cand"], json.dumps({k: v for k, v in e["result"].items() if k != "wall_time"})) for e in population]


def train_on_loky(texts: list[str], task: TaskSpec) -> list[EvalResult]:
    """Each text trained by ``evaluators:evaluate`` on a 2-worker loky backend, in the order given, in chunks as the
    search trains them (batched, so in the same floating-point order whatever the chunk holds)."""
    backend = make_backend("loky", "evaluators:evaluate", task, workers=2, members=ParallelConfig.chunk)
    backend.start()
    results: dict[int, EvalResult] = {}
    try:
        todo = list(enumerate(texts))
        while todo or backend.running():
            while todo and backend.running() < backend.capacity() * backend.depth:
                backend.submit(*todo.pop(0))
            results.update((d.cid, d.result) for d in backend.wait(1.0))
    finally:
        backend.close()
    return [results[i] for i in range(len(texts))]


def faulty_local_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int, timeout: float,
                         faults: dict[int, str]) -> tuple[SearchConfig, list[str]]:
    """A search of ``n`` candidates on its own 2-worker LocalCluster, where candidate i does ``faults[i]``
    (tests/gp_backprop/faults.py); returns the config and the candidates' texts, in proposal order."""
    cfg = tiny_config(tmp_path, space={"population": n}, budget={"max_evals": n},
                      parallel={"workers": 2, "backend": "dask"},
                      evaluation={"function": "tests.gp_backprop.faults:faulty", "timeout": timeout})
    probe = Controller(cfg.space, cfg.seed)
    texts = [probe.propose().text for _ in range(n)]
    monkeypatch.setenv("GP_FAULTS", json.dumps({texts[i]: fault for i, fault in faults.items()}))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))        # the workers import tests.gp_backprop.faults
    return cfg, texts


def test_a_search_starts_its_own_local_cluster_and_survives_a_timeout(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, texts = faulty_local_cluster(tmp_path, monkeypatch, 8, 3.0, {2: "sleep", 3: "raise"})
    out = run_search(cfg, progress=False)
    ctl = out.controller
    assert out.status == "finished" and out.workers == 2
    assert sorted(e.cand.cid for e in ctl.population) == list(range(8))
    expected = {texts[2]: "timeout", texts[3]: "error"}
    assert [e.result.status for e in ctl.population] == [expected.get(e.cand.text, "ok") for e in ctl.population]
    sleeper = next(e for e in ctl.population if e.cand.text == texts[2])
    assert sleeper.busy >= 3.0                            # never stopped before its time (a bound, not a measurement)


def test_a_candidate_queued_on_a_dask_worker_is_timed_from_its_start(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker holds a second chunk while the first trains (one candidate each: these are long); waiting there
    does not count against a candidate's timeout."""
    cfg, _ = faulty_local_cluster(tmp_path, monkeypatch, 6, 2.0, {i: "nap" for i in range(6)})
    monkeypatch.setenv("GP_NAP", "1.3")   # queued ones finish 2.6 s after submission, each within its 2 s
    out = run_search(cfg, progress=False)
    assert [e.result.status for e in out.controller.population] == ["ok"] * 6
