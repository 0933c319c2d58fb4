"""MLflow over HTTP (issue 5): a real ``mlflow server`` on 127.0.0.1 receives a small search; the parent and child
runs read back with ``mlflow.search_runs`` carry the config, progress metrics, artifacts and per-candidate records."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gp_backprop.evolve import main
from tests.gp_backprop.conftest import TINY_FLAGS
from tests.gp_backprop.tracking.conftest import free_port

CHILD_PARAMS = {"equation", "key", "origin", "status"}
CHILD_METRICS = {"fitness", "val_acc", "test_acc", "wall_time", "evaluation"}


def test_a_search_is_recorded_on_an_mlflow_server(mlflow_server: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    evals = 10
    assert main([*TINY_FLAGS, "--name", "over-http", "--tracking-uri", mlflow_server, "--workers", "1",
                 "--max-evals", str(evals), "--population", "6"]) == 0
    out = capsys.readouterr().out
    assert f"MLflow: experiment 'over-http'" in out and f"open {mlflow_server}/#/experiments/" in out
    assert "View run" not in out and f"{evals} of {evals} child runs reached MLflow" in out

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    runs = mlflow.search_runs(experiment_names=["over-http"], output_format="list", max_results=1000)
    parents = [r for r in runs if r.data.tags.get("gp.kind") == "search"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == evals == len(runs) - 1

    # The parent: all config as params, progress metrics over the evaluation count, artifacts, finished.
    assert parent.info.status == "FINISHED"
    assert parent.data.params["space.population"] == "6" and parent.data.params["task.dataset"] == "synthetic"
    assert parent.data.params["budget.max_evals"] == str(evals)
    assert {"best_fitness", "median_fitness", "evals_per_min", "cache_hits"} <= set(parent.data.metrics)
    client = MlflowClient(mlflow_server)
    assert client.get_metric_history(parent.info.run_id, "best_fitness")[-1].step == evals
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"hall_of_fame.csv", "fitness.png", "hall_of_fame.png"}
    csv = Path(client.download_artifacts(parent.info.run_id, "hall_of_fame.csv", str(tmp_path))).read_text()
    assert csv.startswith("rank,val_acc,test_acc,status,equation,latex,key,evaluation,times_proposed")

    # Every child: equation, key, origin, status; fitness; val acc per epoch; test acc; time; evaluation number.
    keys = set()
    for run in children:
        p, m = run.data.params, run.data.metrics
        assert CHILD_PARAMS <= set(p) and CHILD_METRICS <= set(m), (p, m)
        assert p["status"] in ("ok", "diverged", "hurdle")
        assert run.info.status == ("FAILED" if p["status"] == "diverged" else "FINISHED")
        assert m["fitness"] == (m["val_acc"] if p["status"] != "diverged" else 0.0)
        history = client.get_metric_history(run.info.run_id, "val_acc")
        mark = {"ok": "", "hurdle": f"[hurdle@{len(history)}] "}.get(p["status"], f"[{p['status']}] ")
        assert run.info.run_name in (f"#{int(m['evaluation'])} {mark}{p['equation']}"[:250], "backprop (reference)")
        if p["status"] == "ok":
            assert [h.step for h in history] == [1, 2]          # one value per epoch
        keys.add(p["key"])
    assert len(keys) == evals
    # The search's lineage: the reference and 5 random equations (population 6), then mutants, each of a candidate
    # trained before it, which its run links to.
    trained_at = {r.info.run_id: r.data.metrics["evaluation"] for r in children}
    assert Counter(r.data.params["origin"] for r in children) == {"reference": 1, "random": 5, "mutation": evals - 6}
    for run in children:
        p, parent = run.data.params, run.data.tags.get("gp.parent_run_id")
        if p["origin"] == "mutation":
            assert parent in trained_at and trained_at[parent] < run.data.metrics["evaluation"], (p, parent)
            assert " -> " in p["mutation"], p
        else:
            assert parent is None and "mutation" not in p, p
    reference = [r for r in children if r.data.params["origin"] == "reference"]
    assert len(reference) == 1 and reference[0].data.params["equation"] == "left(g, g)"


def test_an_unreachable_server_is_one_line_and_exit_2(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit) as exc:
        main([*TINY_FLAGS, "--tracking-uri", url, "--max-evals", "2"])
    err = capsys.readouterr().err
    # The server check's message: it fails at once, before MLflow's client would retry for minutes.
    assert exc.value.code == 2
    assert err.count("\n") == 1 and f"cannot reach the MLflow server at {url}" in err and "--no-tracking" in err
    assert list(in_tmp.iterdir()) == []
