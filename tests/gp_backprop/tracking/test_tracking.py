"""MLflow tracking on a local sqlite store (issue 5): a resumed search ends with exactly one whole child run per
candidate, wherever the kill interrupted the writer."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from mlflow import MlflowClient

from evaluators import EvalResult
from gp_backprop.search.controller import Candidate, Entry
from gp_backprop.tracking import Tracker


def entries(n: int) -> list[Entry]:
    now = time.time()
    return [Entry(i, Candidate(i, f"add(g, {i})", f"k{i:02d}", origin="random"),
                  EvalResult("ok", val_acc=0.5 + i / 100, val_curve=(0.4, 0.5 + i / 100)), busy=0.1, at=now + i)
            for i in range(n)]


def tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path}/mlflow.db", "resume", str(tmp_path / "artifacts"))


def children(tmp_path: Path, run_id: str) -> list:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("resume")
    return client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=100)


def test_a_resume_completes_half_written_children_and_logs_each_candidate_once(tmp_path: Path) -> None:
    es = entries(6)
    first = tracker(tmp_path)
    run_id = first.open({"seed": "1"}, entries=es[:3])
    assert first.close("KILLED")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    # The kill's two windows: entry 3 got create_run but not its log_batch; entry 4 got both, not set_terminated.
    client.create_run(first.experiment_id, start_time=int((es[3].at - 0.1) * 1000),
                      tags={"mlflow.parentRunId": run_id, "gp.key": es[3].cand.key})
    whole = client.create_run(first.experiment_id, start_time=int((es[4].at - 0.1) * 1000),
                              tags={"mlflow.parentRunId": run_id, "gp.key": es[4].cand.key})
    client.log_param(whole.info.run_id, "evaluation", "5")
    client.log_param(whole.info.run_id, "status", "ok")

    again = tracker(tmp_path)
    assert again.open({"seed": "1"}, run_id=run_id, entries=es, logged=3) == run_id
    assert again.close()

    runs = children(tmp_path, run_id)
    assert sorted(r.data.tags["gp.key"] for r in runs) == [e.cand.key for e in es]   # one child per candidate
    assert all(r.info.status == "FINISHED" for r in runs)
    by_key = {r.data.tags["gp.key"]: r for r in runs}
    assert by_key["k03"].data.params["equation"] == "add(g, 3)"                        # rewritten in full
    assert by_key["k03"].data.metrics["val_acc"] == 0.53


def test_progress_metrics_overtake_a_backlog_of_child_runs(tmp_path: Path) -> None:
    """The UI's progress charts stay current while child runs wait for idle CPU; children keep their order."""
    es = entries(5)
    t = tracker(tmp_path)
    inside, gate, order = threading.Event(), threading.Event(), []
    log_child, log_metrics = t._log_child, t._log_metrics

    def slow_child(e: Entry) -> None:
        inside.set()
        gate.wait(10)
        order.append(e.cand.key)
        log_child(e)

    def metrics(step: int, values: dict[str, float], at: float) -> None:
        order.append(f"metrics@{step}")
        log_metrics(step, values, at)

    t._log_child, t._log_metrics = slow_child, metrics
    run_id = t.open({"seed": "1"}, entries=es[:3])
    assert inside.wait(10)   # the writer is busy with the first child
    t.child(es[3])
    t.progress(4, {"best_fitness": 0.54})
    t.child(es[4])
    assert t.backlog() == 5
    gate.set()
    assert t.close() and t.backlog() == 0
    # The writer was inside the first child when the rest queued up; the metrics went next, then the children in order.
    assert order == ["k00", "metrics@4", "k01", "k02", "k03", "k04"]
    assert len(children(tmp_path, run_id)) == 5
    history = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_metric_history(run_id, "best_fitness")
    assert [(m.step, m.value) for m in history] == [(4, 0.54)]
