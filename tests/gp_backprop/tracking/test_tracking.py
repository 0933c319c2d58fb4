"""MLflow tracking on a local sqlite store (issues 5 and 14): a resumed search ends with exactly one whole child run
per candidate, runs batch-written to the database read back as client-written runs do, and each child run says
what happened to its candidate."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evaluators import EvalResult
from gp_backprop.search.controller import Candidate, Entry
from gp_backprop.config import build, flatten
from gp_backprop.render import Row
from gp_backprop.tracking import Tracker
from gp_backprop.tracking.runs import child_record
from gp_backprop.tracking.sinks import ClientSink, SqlSink, make_sink


def entries(n: int, statuses: tuple[str, ...] = ("ok",)) -> list[Entry]:
    now = time.time()
    return [Entry(i, Candidate(i, f"add(g, {i})", f"k{i:02d}", parent=f"k{i - 1:02d}" if i else "",
                               origin="mutation" if i else "reference", mutation="0: sub -> add" if i else ""),
                  EvalResult(statuses[i % len(statuses)], val_acc=0.5 + i / 100 + 1e-7,
                             val_curve=(0.4123456, 0.5 + i / 100 + 1e-7)), busy=0.1, at=now + i)
            for i in range(n)]


def tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path}/mlflow.db", "resume", str(tmp_path / "artifacts"), flush_every=0.1)


def children(tmp_path: Path, run_id: str) -> list:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("resume")
    return client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=100)


def test_a_resume_completes_half_written_children_and_logs_each_candidate_once(tmp_path: Path) -> None:
    es = entries(6)
    first = tracker(tmp_path)
    run_id = first.open({"seed": "1"}, entries=[es[0], es[2]])   # entry 1's run is lost, though counted below
    assert first.close("KILLED")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    # An HTTP writer's kill windows: entry 3 got create_run but not its log_batch; entry 4 got both, not
    # set_terminated.
    client.create_run(first.experiment_id, start_time=int((es[3].at - 0.1) * 1000),
                      tags={"mlflow.parentRunId": run_id, "gp.key": es[3].cand.key})
    whole = client.create_run(first.experiment_id, start_time=int((es[4].at - 0.1) * 1000),
                              tags={"mlflow.parentRunId": run_id, "gp.key": es[4].cand.key})
    client.log_metric(whole.info.run_id, "evaluation", 5)
    client.log_param(whole.info.run_id, "status", "ok")

    again = tracker(tmp_path)
    # The checkpoint says 5 were logged, as issue 14's writer counted a failed write: the store is asked instead.
    assert again.open({"seed": "1"}, run_id=run_id, entries=es, logged=5) == run_id
    assert again.close()

    runs = children(tmp_path, run_id)
    assert sorted(r.data.tags["gp.key"] for r in runs) == [e.cand.key for e in es]   # one child per candidate
    assert all(r.info.status == "FINISHED" for r in runs)
    by_key = {r.data.tags["gp.key"]: r for r in runs}
    assert by_key["k03"].data.params["equation"] == "add(g, 3)"                        # rewritten in full
    assert by_key["k01"].data.params["equation"] == "add(g, 1)"                        # the lost one is back
    assert by_key["k03"].data.metrics["val_acc"] == 0.53
    assert client.get_run(run_id).info.status == "FINISHED" and again.logged == 6


def test_children_say_what_happened_to_their_candidate(tmp_path: Path) -> None:
    statuses = ("ok", "diverged", "hurdle", "error", "timeout", "crashed")
    es = entries(6, statuses)
    t = tracker(tmp_path)
    run_id = t.open({"seed": "1"}, entries=es)
    assert t.close()
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    by_key = {r.data.tags["gp.key"]: r for r in children(tmp_path, run_id)}
    for e in es:
        r = by_key[e.cand.key]
        status = e.result.status
        assert r.data.tags["gp.status"] == status
        assert r.info.status == ("FINISHED" if status in ("ok", "hurdle") else "FAILED"), status
        assert r.data.metrics["evaluation"] == e.index + 1                          # a number, sorts as one
        assert r.info.run_name == ("backprop (reference)" if e.index == 0 else f"#{e.index + 1} {e.cand.text}")
        assert r.data.metrics["fitness"] == round(e.result.fitness, 4)              # 4 decimals
        assert [m.value for m in client.get_metric_history(r.info.run_id, "val_acc")] == \
            [0.4123, round(e.result.val_curve[1], 4)]
        assert "latex" not in r.data.params and "parent_key" not in r.data.params
        if e.index:   # the parent candidate's run, by id
            assert client.get_run(r.data.tags["gp.parent_run_id"]).data.tags["gp.key"] == e.cand.parent
            assert r.data.tags["gp.parent_run_id"] in r.data.tags["mlflow.note.content"]
    ref = by_key["k00"]
    assert ref.data.tags["gp.role"] == "reference" and "gp.parent_run_id" not in ref.data.tags
    parent = client.get_run(run_id)
    assert parent.data.metrics["reference_fitness"] == round(es[0].result.fitness, 4)
    assert parent.data.tags["gp.reference_run_id"] == ref.info.run_id
    best = max(es, key=lambda e: e.result.fitness)
    assert parent.data.tags["gp.best_run_id"] == by_key[best.cand.key].info.run_id


def test_batch_written_runs_read_back_as_client_written_runs(tmp_path: Path) -> None:
    """The database sink writes the rows MLflow's own create_run, log_batch and set_terminated would: the two
    runs of one record differ only in their ids."""
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("same", (tmp_path / "art").as_uri())
    parent = client.create_run(exp).info.run_id
    sql = make_sink(client, exp, parent)
    assert isinstance(sql, SqlSink)
    e = entries(3)[2]
    provenance = {"mlflow.user": "someone", "mlflow.source.name": "evolve.py", "mlflow.source.type": "LOCAL"}
    a, b = (child_record(e, parent, exp, "backprop", provenance, ("p" * 32, "#2 x")) for _ in range(2))
    sql.assign(a)
    sql.write([a])
    sql.write([a])                       # a retry after a commit whose success was lost: no second run
    ClientSink(client, exp).write([b])
    runs = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(runs) == 2
    ra, rb = sorted(runs, key=lambda r: r.info.run_id != a.run_id)
    ia, ib = ra.info.to_proto(), rb.info.to_proto()
    for info in (ia, ib):
        info.ClearField("run_id")
        info.ClearField("run_uuid")
    assert str(ia).replace(a.run_id, "ID") == str(ib).replace(b.run_id, "ID")
    assert ra.data.tags == rb.data.tags and ra.data.params == rb.data.params and ra.data.metrics == rb.data.metrics
    for key in ra.data.metrics:
        ha, hb = client.get_metric_history(a.run_id, key), client.get_metric_history(b.run_id, key)
        assert [(m.value, m.step, m.timestamp) for m in ha] == [(m.value, m.step, m.timestamp) for m in hb]
    assert ra.info.status == "FINISHED" and ra.info.lifecycle_stage == "active" and ra.info.user_id == "someone"


def test_the_parent_describes_the_search_and_logs_only_the_settings_its_model_reads(tmp_path: Path) -> None:
    es = entries(8)
    t = tracker(tmp_path)
    run_id = t.open(flatten(build([]).to_dict()), entries=es)
    ranked = sorted(es, key=lambda e: -e.result.fitness)
    rows = [Row(i + 1, e.result.val_acc, 0.5, "ok", e.cand.text, "g + h^{p}^{2}", e.cand.key, e.index + 1, 1)
            for i, e in enumerate(ranked)]
    ref = Row(8, es[0].result.val_acc, 0.4, "ok", es[0].cand.text, "g", es[0].cand.key, 1, 1)
    t.artifacts(rows, [e.result.fitness for e in es], ref,
                {"status": "finished", "evaluations": 8, "cache_hits": 3, "elapsed": 75.0})
    assert t.close()
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.get_run(run_id)
    note = parent.data.tags["mlflow.note.content"]
    assert "finished after 8 evaluations (+3 cache hits) in 1m15s" in note
    assert f"Best: `{ranked[0].cand.text}`, fitness **0.5700** against backprop's **0.5000**" in note
    kids = {r.info.run_id: r for r in children(tmp_path, run_id)}
    linked = re.findall(r"\(#/experiments/\d+/runs/([0-9a-f]{32})\)", note)
    assert [kids[i].data.tags["gp.key"] for i in linked] == [e.cand.key for e in ranked[:5]] + ["k00"]
    assert {a.path for a in client.list_artifacts(run_id)} == {"hall_of_fame.csv", "hall_of_fame.png", "fitness.png"}
    params = parent.data.params
    assert params["task.model.arch"] == "mlp" and "task.model.widths" in params
    assert not {"task.model.depth", "task.model.width", "task.momentum", "space.tournament_size"} & set(params)

    wrn = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "wrn", str(tmp_path / "artifacts"))
    wrn_id = wrn.open(flatten(build([("test", {"task": {"model": {"arch": "wrn"}}})]).to_dict()))
    assert wrn.close()
    params = client.get_run(wrn_id).data.params
    assert params["task.model.depth"] == "16" and params["task.model.width"] == "2" and "task.model.widths" not in params


def test_a_search_nests_under_a_run_of_a_shared_experiment_and_is_found_by_its_name(tmp_path: Path) -> None:
    from gp_backprop.tracking import TrackingError, client as store_client, find_search

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mc = store_client(uri)
    shared = mc.create_experiment("campaign-x")
    outer = mc.create_run(shared, run_name="campaign x").info.run_id
    t = Tracker(uri, "x-s1", str(tmp_path / "artifacts"), experiment="campaign-x", parent_run_id=outer,
                flush_every=0.1)
    run_id = t.open(flatten(build([("test", {"name": "x-s1"})]).to_dict()), entries=entries(2))
    assert t.close()
    run = mc.get_run(run_id)
    assert run.info.experiment_id == shared and run.data.tags["mlflow.parentRunId"] == outer
    assert run.info.run_name == "search x-s1" and mc.get_experiment_by_name("x-s1") is None
    assert find_search(mc, "x-s1").info.run_id == run_id      # by its name, though its experiment is the campaign's

    elsewhere = Tracker(uri, "x-s2", str(tmp_path / "artifacts"), parent_run_id=outer)
    with pytest.raises(TrackingError, match=r"is in experiment 'campaign-x', not 'x-s2': set tracking.experiment"):
        elsewhere.open({"name": "x-s2"})
