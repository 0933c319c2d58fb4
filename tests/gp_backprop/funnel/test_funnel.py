"""The generalization funnel end to end on the synthetic task: its table matches its MLflow records, a rerun with
the same seeds reproduces it, and ``report`` regenerates everything from MLflow alone."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import primitives as P
from evaluators import TaskSpec
from gp_backprop import funnel, tracking
from gp_backprop.config import flatten
from gp_backprop.evolve import main as evolve
from gp_backprop.reevaluate import main as reevaluate
from gp_backprop.report import main as report
from gp_backprop.funnel.setups import SetupError, fresh_seeds, setups, task_from_params
from tests.gp_backprop.conftest import TINY_FLAGS

URI = "sqlite:///mlruns/mlflow.db"
FUNNEL = ["--search", "tiny", "--top", "2", "--seeds", "2", "--setups", "A1,A2,A3", "--workers", "2",
          "--tune-points", "3"]
CONTROLS = {"backprop (reference)", "g/||g||_F"}


@pytest.fixture
def searched(in_tmp: Path) -> Path:
    assert evolve(["--name", "tiny", "--max-evals", "16", "--population", "8", "--workers", "2", *TINY_FLAGS]) == 0
    return in_tmp


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_funnel_table_matches_mlflow_and_reruns_reproduce_it(searched, capsys):
    assert reevaluate([*FUNNEL, "--out", "first"]) == 0
    printed = capsys.readouterr().out
    table = rows(searched / "first" / "funnel.csv")
    cells = {(r["setup"], r["equation"]) for r in table}
    assert len(cells) == (2 + 2) * 3                 # (2 controls + 2 finalists) x 3 setups
    assert {r["setup"] for r in table} == {"A1", "A2", "A3"}
    assert {r["control"] for r in table} == CONTROLS | {""}
    finalist_rows = [r for r in table if not r["control"]]
    assert len(finalist_rows) == 2 * 3 * 2           # each finalist against each control, in each setup
    assert {r["versus"] for r in finalist_rows} == CONTROLS
    # a control is tested against the reference too: the table says when a control itself beats backprop
    fro = [r for r in table if r["control"] == "g/||g||_F"]
    assert len(fro) == 3 and {r["versus"] for r in fro} == {"backprop (reference)"} and all(r["p_holm"] for r in fro)
    assert all(0.0 <= float(r["p"]) <= float(r["p_holm"]) <= 1.0 for r in finalist_rows)
    assert all(len(r["seeds_test_acc"].split()) == 2 and r["latex"] for r in table)
    tuned = (searched / "first" / "tuning.txt").read_text()
    assert tuned.count("<- best") == 4                # each row tuned once (one dataset)

    mc = tracking.client(URI)
    search = tracking.find_search(mc, "tiny")
    funnel_run, entries = funnel.read_funnel(mc, search)
    assert funnel_run.data.tags["mlflow.parentRunId"] == search.info.run_id
    logged = {(e.finalist.equation, e.label.split()[0]): (e.mean, e.std) for e in entries}
    for r in table:
        mean, std = logged[(r["equation"], r["setup"])]
        assert mean == pytest.approx(float(r["test_acc_mean"]), abs=1e-4)
        assert std == pytest.approx(float(r["test_acc_std"]), abs=1e-4)
    for e in entries:                                # the table printed is the table logged
        assert f"{e.mean:.2f} ± {e.std:.2f}" in printed
    artifacts = {a.path for a in mc.list_artifacts(funnel_run.info.run_id)}
    assert {"funnel.md", "funnel.csv", "curves_A1_SGD.png", "curves_A2_SGD.png", "curves_A3_SGD.png"} <= artifacts

    assert reevaluate([*FUNNEL, "--out", "second", "--no-tracking"]) == 0
    again = rows(searched / "second" / "funnel.csv")
    key = lambda r: (r["setup"], r["equation"])  # noqa: E731
    assert [(key(r), r["seeds_test_acc"]) for r in sorted(table, key=key)] == \
           [(key(r), r["seeds_test_acc"]) for r in sorted(again, key=key)]

    capsys.readouterr()
    assert report(["--search", search.info.run_id, "--out", "report"]) == 0
    out = capsys.readouterr().out
    assert "<- backprop seed" in out and "funnel run" in out and "Holm" in out
    assert (searched / "report" / "fitness.png").stat().st_size > 0
    assert (searched / "report" / "funnel.md").read_text() == (searched / "first" / "funnel.md").read_text()


def test_unknown_search_is_one_line_and_exit_2(in_tmp, capsys):
    with pytest.raises(SystemExit) as info:
        reevaluate(["--search", "nope"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "no search run or experiment named 'nope'" in err


def mlp_parameters(sizes: list[int]) -> int:
    """Input -> Linear -> [activation -> Linear]...: a layer from a to b units holds a * b weights and b biases."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def test_setups_follow_the_paper():
    task = TaskSpec(hurdle_epoch=4, hurdle_acc=0.2)  # the search's early stop, which re-tests must not inherit
    by = {(s.name, s.optimizer): s for s in setups(task, ["A1", "A2", "A3"], ["sgd", "momentum"], (64,), 10)}
    assert by[("A1", "sgd")].task == task.with_(hurdle_epoch=0)
    assert all(s.task.hurdle_epoch == 0 for s in by.values())
    # A2 is "about 10x the parameters" (§4): of the uniformly widened MLPs (quarter steps of the 64-unit layers), the
    # one whose count, from its layer sizes, is closest to 10x; the description states that ratio.
    base = mlp_parameters([64, 64, 64, 10])
    ratios = {w: mlp_parameters([64, w, w, 10]) / base for w in range(64, 64 * 8 + 1, 16)}
    w = min(ratios, key=lambda w: abs(ratios[w] - 10))
    a2 = by[("A2", "sgd")]
    assert a2.task.model.widths == (w, w)
    assert a2.description == f"MLP widths {w},{w} ({ratios[w]:.1f}x the parameters), {task.epochs} epochs"
    assert by[("A3", "sgd")].task.epochs == 5 * task.epochs and by[("A3", "sgd")].task.schedule == "cosine"
    assert by[("A1", "momentum")].task.optimizer == "momentum" and by[("A1", "momentum")].task.lr == 0.01
    wrn = task.with_(model_arch="wrn", model_depth=16, model_width=2, dataset="cifar10")
    a2, b1 = setups(wrn, ["A2", "B1"], ["sgd"], (3, 32, 32), 10)
    assert (a2.task.model.depth, a2.task.model.width) == (28, 10)
    assert (b1.task.model.depth, b1.task.model.width, b1.task.epochs) == (10, 1, 100)
    with pytest.raises(SetupError, match="B1 .* is for WRN searches"):
        setups(task, ["B1"], ["sgd"], (64,), 10)
    assert fresh_seeds(task, 3) == [1, 2, 3]                              # never the search's own seed 0


def test_a_search_task_is_rebuilt_from_its_mlflow_params():
    task = TaskSpec(dataset="synthetic", lr_decay_epochs=(3, 5), data_root=None).with_(model_widths=(16, 8))
    assert task_from_params(flatten({"task": task.to_dict()})) == task
    rooted = TaskSpec(data_root="/data", max_train_batches=3, hurdle_acc=0.25).with_(model_arch="wrn")
    for t in (TaskSpec(), rooted):                                         # () and None, as flatten writes them
        assert task_from_params(flatten({"task": t.to_dict()})) == t
    params = {**flatten({"task": task.to_dict()}), "task.retired_setting": "1", "space.population": "9"}
    assert task_from_params(params) == task                                # other params are not the task's
    with pytest.raises(SetupError, match=r"task.lr = 'fast' must be float"):
        task_from_params({**params, "task.lr": "fast"})


def test_several_searches_pool_their_finalists_as_one_ranking_of_one_task(searched, capsys):
    assert evolve(["--name", "tiny2", "--seed", "3", "--max-evals", "12", "--population", "8", "--workers", "1",
                   *TINY_FLAGS]) == 0
    mc = tracking.client(URI)
    runs = funnel.find_searches(mc, "tiny, tiny2")
    one, two = (funnel.finalists(mc, r, 1)[0] for r in runs)
    pooled = funnel.finalists(mc, runs, 4)
    assert {one.equation, two.equation} <= {f.equation for f in pooled}      # each search's best is in the pool
    assert [f.fitness for f in pooled] == sorted((f.fitness for f in pooled), reverse=True)
    assert len({P.function_key(P.parse(f.equation)) for f in pooled}) == 4    # distinct functions, over both
    capsys.readouterr()
    assert reevaluate(["--search", "tiny,tiny2", "--top", "4", "--setups", "A1", "--seeds", "2", "--workers", "1",
                       "--tune-points", "1", "--out", "pooled"]) == 0
    table = rows(searched / "pooled" / "funnel.csv")
    assert {r["equation"] for r in table if not r["control"]} == {f.equation for f in pooled}
    logged = funnel.read_funnel(mc, runs[0])[0]                               # under the first search
    assert logged.data.params["search_run"] == f"{runs[0].info.run_id},{runs[1].info.run_id}"

    assert evolve(["--name", "longer", "--max-evals", "2", "--population", "2", "--workers", "1", *TINY_FLAGS,
                   "--epochs", "3"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:                                    # other trainings: no common ranking
        reevaluate(["--search", "tiny,longer"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "searches 'search tiny' and 'search longer' differ in task.epochs ('2' vs '3')" in err
    with pytest.raises(SystemExit):
        reevaluate(["--search", "tiny,tiny"])
    assert "search 'tiny' is named twice" in capsys.readouterr().err




def test_a_control_the_search_rediscovers_is_reported_as_found_and_trained_once(in_tmp):
    assert evolve(["--name", "fro", "--max-evals", "6", "--population", "4", "--workers", "1", *TINY_FLAGS,
                   "--init", "seeds:backprop_fro"]) == 0
    mc = tracking.client(URI)
    search = tracking.find_search(mc, "fro")
    ranked = [f.equation for f in funnel.rows(mc, search, 2)]
    reference, fro, *found = funnel.rows(mc, search, 2)
    assert (reference.control, reference.found) == ("backprop (reference)", "")
    assert fro.control == "g/||g||_F" and fro.found.startswith("#") and fro.found.endswith(P.SEEDS["backprop_fro"])
    fk = P.function_key(P.parse(P.SEEDS["backprop_fro"]))
    assert len(found) == 2 and all(P.function_key(P.parse(f.equation)) != fk for f in found)   # not a second row
    assert ranked.count(fro.equation) == 1
    assert "(control; the search found it: #" in funnel.table([funnel.Summary(fro, "A1 SGD", 60.0, 1.0, (59.0, 61.0))])


def test_an_adam_search_is_re_tested_with_adam():
    adam = TaskSpec(optimizer="adam", lr=3e-3)
    a1, a3 = setups(adam, ["A1", "A3"], ["adam"], (64,), 10)
    assert (a1.label, a1.task.optimizer, a1.task.lr) == ("A1 Adam", "adam", 3e-3) and a3.task.epochs == 100
    with pytest.raises(SetupError, match="optimizer 'sgd' cannot re-test a search that used 'adam'"):
        setups(adam, ["A1"], ["sgd"], (64,), 10)
