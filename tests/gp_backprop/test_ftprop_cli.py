"""python -m gp_backprop.ftprop: one row per rule under identical conditions, the CSV, the official defaults, both
routes agreeing, fake CIFAR-10 with ConvNet4, and one-line errors with exit code 2."""
import csv

import pytest

from evaluators import TaskSpec, evaluate
from gp_backprop.ftprop import decay_epochs, main
from primitives import SEEDS

TINY = ["--task", "digits", "--widths", "16,16", "--epochs", "2", "--seeds", "2", "--no-tracking"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_trains_every_rule_under_identical_conditions_and_writes_the_table(tmp_path, capsys):
    out_csv = tmp_path / "t.csv"
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert main([*TINY[:-1], "--csv", str(out_csv), "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "adam lr=0.003 wd=0.0005, batch 64, 2 epochs" in out
    rows = read_csv(out_csv)
    assert [r["rule"] for r in rows] == ["ftp-sh", "sste", "relu", "sat-relu"]
    assert [r["activation"] for r in rows] == ["sign_ftp_sh", "sign_sste", "relu", "sat_relu"]
    assert all(r["ok"] == "2" and f"{float(r['test_mean']):.4f} ± " in out for r in rows)
    # Each row is exactly evaluate() on seeds 0..K-1 of one shared task, only the activation differing.
    task = TaskSpec(optimizer="adam", lr=3e-3, weight_decay=5e-4, epochs=2, schedule="step",
                    lr_decay_epochs=decay_epochs(2)).with_(model_widths=(16, 16))
    for row in rows:
        per_seed = [evaluate(None, task.with_(seed=s, model_activation=row["activation"])).test_acc for s in range(2)]
        assert row["test_per_seed"] == ";".join(f"{a:.4f}" for a in per_seed)
    # The same table is in MLflow: a parent run with the CSV, one child per rule with its numbers.
    from mlflow import MlflowClient
    mc = MlflowClient(uri)
    exp = mc.get_experiment_by_name("ftprop")
    (parent,) = mc.search_runs([exp.experiment_id], "tags.`gp.kind` = 'table'")
    assert [a.path for a in mc.list_artifacts(parent.info.run_id)] == ["t.csv"]
    children = mc.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    logged = {c.data.params["rule"]: c.data.metrics["test_mean"] for c in children}
    assert logged == pytest.approx({r["rule"]: float(r["test_mean"]) for r in rows})


def test_dsl_route_gives_the_direct_routes_numbers(tmp_path):
    rows = {}
    for route in ("direct", "dsl"):
        assert main([*TINY, "--rules", "ftp-sh,sste", "--route", route, "--csv", str(tmp_path / f"{route}.csv")]) == 0
        rows[route] = read_csv(tmp_path / f"{route}.csv")
    assert [r["equation"] for r in rows["dsl"]] == [SEEDS["ftp_sh"], SEEDS["sste"]]
    for direct, dsl in zip(rows["direct"], rows["dsl"]):
        assert (direct["test_per_seed"], direct["val_mean"]) == (dsl["test_per_seed"], dsl["val_mean"])


def test_official_schedule_scales_with_the_epoch_budget():
    assert decay_epochs(300) == (200, 250)
    assert decay_epochs(30) == (21, 26)
    assert decay_epochs(1) == ()


def test_convnet4_on_fake_cifar10_for_one_epoch_of_a_few_batches(fake_cifar10_root, monkeypatch, tmp_path, capsys):
    import evaluators.data.cifar10 as cifar10
    from tests.fake_cifar10 import UncheckedCIFAR10
    monkeypatch.setattr(cifar10, "CIFAR10_CLASS", UncheckedCIFAR10)
    argv = ["--task", "cifar10", "--data-root", str(fake_cifar10_root), "--model", "convnet4", "--act", "qrelu",
            "--rules", "ftp-sh,sste,relu", "--seeds", "1", "--epochs", "1", "--max-batches", "2", "--batch-size", "16",
            "--csv", str(tmp_path / "c.csv")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cifar10, convnet4, qrelu activations" in out and "adam lr=0.00025 wd=0.0005" in out
    assert [(r["activation"], r["ok"]) for r in read_csv(tmp_path / "c.csv")] == [
        ("qrelu_ftp_sh", "1"), ("qrelu_sste", "1"), ("relu", "1")]


@pytest.mark.parametrize("argv, message", [
    (["--rules", "ftp-sh,sste2"], "unknown rule 'sste2' for --act sign; valid: ftp-sh, ftp-sh-unscaled"),
    (["--rules", "ftp-sh,sste2"], "did you mean 'sste'?"),
    (["--act", "qrelu", "--rules", "ste"], "unknown rule 'ste' for --act qrelu"),
    (["--act", "tanh"], "unknown --act 'tanh'; valid: sign, qrelu"),
    (["--route", "dsl", "--rules", "sat-hinge"], "rule 'sat-hinge' has no seed equation for --route dsl"),
    (["--rules", "sste,sste"], "names a rule twice"),
    (["--model", "convnet8"], "convnet8 needs 32x32 or 40x40 images"),
    (["--model", "resnet"], "unknown model arch 'resnet'"),
    (["--task", "cifar10", "--model", "convnet4"], "cifar10 needs a data folder"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--epoch", "3"], "did you mean --epochs?"),
    (["--widths", "64,x"], "--widths must be comma-separated integers"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and err.startswith("ftprop: error: ") and message in err
