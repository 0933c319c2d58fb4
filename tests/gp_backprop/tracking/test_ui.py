"""What a newcomer meets in the MLflow UI, the parts that need no browser (``.ci/ui_screenshots.py`` checks them in
headless Chromium): the address the summary prints opens the search's runs table, the experiment says it is model
training, and the parent's description lists each rule once and links the best and the reference runs. Run names
that tell a stopped run from a trained one: ``test_tracking.py``."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from gp_backprop.evolve import main
from gp_backprop.render import Row
from tests.gp_backprop.conftest import TINY_FLAGS
from tests.gp_backprop.tracking.test_tracking import children, entries, linked, tracker


def test_the_summary_prints_the_address_of_the_runs_table(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TINY_FLAGS, "--name", "first", "--workers", "1", "--max-evals", "3", "--population", "3"]) == 0
    out = capsys.readouterr().out
    exp = MlflowClient(f"sqlite:///{in_tmp}/mlruns/mlflow.db").get_experiment_by_name("first")
    # MLflow 3.17's UI opens an experiment on the GenAI overview unless the address picks "Model training".
    assert (f"mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1   # then open "
            f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning\n") in out


def test_the_description_lists_each_rule_once_when_the_reference_is_in_the_top_rows(tmp_path: Path) -> None:
    es = entries(6)
    t = tracker(tmp_path)
    run_id = t.open({"seed": "1"}, entries=es)
    order = [es[5], es[0], es[4], es[3], es[2], es[1]]          # the reference (k00) ranks 2nd
    rows = [Row(i + 1, e.result.val_acc, 0.5, "ok", e.cand.text, "g", e.cand.key, e.index + 1, 1)
            for i, e in enumerate(order)]
    t.artifacts(rows, [e.result.fitness for e in es], rows[1], {"status": "finished", "evaluations": 6})
    assert t.close()
    note = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id).data.tags["mlflow.note.content"]
    kids = {r.info.run_id: r.data.tags["gp.key"] for r in children(tmp_path, run_id)}
    table = note[note.index("| rank |"):]
    assert [kids[i] for i in linked(table)] == ["k05", "k00", "k04", "k03", "k02"]   # each rule once
    assert table.count("(reference)") == 1 and "| 2 | [backprop (reference)](" in table
    assert [kids[i] for i in linked(note[:note.index("| rank |")])] == ["k05", "k00"]   # best, reference


def test_the_experiment_is_tagged_as_model_training(tmp_path: Path) -> None:
    """MLflow's UI reads the experiment kind from this tag (its "Machine learning" kind, which opens on the runs
    table); MLflow 3.17's UI also needs its switch in the address, which the summary and descriptions carry."""
    t = tracker(tmp_path)
    t.open({"seed": "1"})
    assert t.close()
    exp = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_experiment_by_name("resume")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
