"""evaluate(): deterministic, and hopeless or broken candidates end quickly with the right status."""
import dataclasses
import importlib

import pytest
import torch

import evaluators.data.cifar10 as cifar10
import primitives.functions as functions
from evaluators import DataError, EvalResult, TaskError, TaskSpec, evaluate
from primitives import SEEDS
from tests.fake_cifar10 import UncheckedCIFAR10

FAST = TaskSpec(dataset="synthetic", epochs=3, batch_size=32).with_(model_widths=(16, 16))


def test_same_inputs_same_result_on_cpu():
    for text in (SEEDS["backprop"], "add(drop_0.1(g), bn(gh))", SEEDS["dfa"]):
        a, b = evaluate(text, FAST), evaluate(text, FAST)
        assert a.status == "ok"
        assert (a.val_curve, a.loss_curve, a.test_acc) == (b.val_curve, b.loss_curve, b.test_acc)
    assert evaluate(SEEDS["backprop"], FAST).val_curve != evaluate(SEEDS["backprop"], FAST.with_(seed=1)).val_curve


def test_result_reports_curves_steps_and_device():
    r = evaluate(SEEDS["backprop_fro"], FAST)
    assert r.status == "ok" and r.fitness == r.val_acc == r.val_curve[-1]
    assert len(r.val_curve) == len(r.loss_curve) == 3
    assert r.steps == 3 * 16 and r.device == "cpu" and r.wall_time  # the seconds inside evaluate are recorded
    assert r.val_acc > 0.4   # well above chance (0.25) on the synthetic task
    assert EvalResult.from_dict(r.to_dict()) == r


def test_evaluate_leaves_the_callers_rng_alone():
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    evaluate(SEEDS["backprop"], FAST)
    assert torch.equal(torch.rand(3), before)


@pytest.mark.parametrize("text", [
    "div(sub(g, g), sub(g, g))",          # NaN everywhere
    "left(inv(sub(g, g)), g)",            # +Inf everywhere
])
def test_nan_and_inf_rules_diverge_at_once(text):
    r = evaluate(text, FAST.with_(epochs=20))
    assert r.status == "diverged" and r.val_acc == 0.0 and r.fitness == 0.0
    assert r.steps <= 1 and "non-finite" in r.message


DIVERGES = TaskSpec(dataset="mnist1d", lr=0.8, epochs=3).with_(model_widths=(100, 100))


def test_a_blow_up_or_a_rising_loss_stops_a_run_as_diverged_when_the_task_asks():
    # g/||g||_F on the default task: at lr 0.8 its loss leaps past 4x the start within 3 steps, at 0.4 its first
    # epoch ends above where it started; both train on (to no use) without the factors.
    blow_up = evaluate(SEEDS["backprop_fro"], DIVERGES.with_(diverge_step=4.0))
    assert blow_up.status == "diverged" and blow_up.steps <= 3 and "4 x its start" in blow_up.message
    rising = evaluate(SEEDS["backprop_fro"], DIVERGES.with_(lr=0.4, epochs=2, diverge_epoch=1.05))
    assert rising.status == "diverged" and len(rising.loss_curve) == 1 and "epoch 1's mean" in rising.message
    assert rising.loss_curve[0] > 1.05 * 2.0
    for off in (DIVERGES, DIVERGES.with_(lr=0.4, epochs=2)):
        assert evaluate(SEEDS["backprop_fro"], off).status == "ok"
    sound = [dataclasses.replace(evaluate(SEEDS["backprop"], task), wall_time=0.0)
             for task in (DIVERGES.with_(diverge_step=4.0, diverge_epoch=1.05), DIVERGES)]
    assert sound[0].status == "ok" and sound[0] == sound[1]                            # a sound run is untouched
    with pytest.raises(TaskError, match="diverge_epoch must be 0 \\(off\\) or a factor above 1"):
        evaluate(SEEDS["backprop"], DIVERGES.with_(diverge_epoch=0.9))


def test_an_exception_inside_the_rule_is_status_error(monkeypatch):
    def broken(x, ctx):
        raise RuntimeError("injected failure in cube")
    monkeypatch.setitem(functions.FUNCTIONS, "cube", dataclasses.replace(functions.FUNCTIONS["cube"], impl=broken))
    r = evaluate("left(cube(g), g)", FAST)
    assert r.status == "error" and "injected failure in cube" in r.message and r.steps == 0


def test_malformed_equation_is_status_error_not_a_crash():
    r = evaluate("left(nrom_fro(g), g)", FAST)
    assert r.status == "error" and "did you mean norm_fro" in r.message


def test_hurdles_at_several_epochs_stop_a_run_at_the_first_it_misses():
    curve = evaluate(SEEDS["backprop"], FAST.with_(epochs=5)).val_curve
    passing = ((1, curve[0] - 0.01), (3, curve[2] - 0.01))
    assert evaluate(SEEDS["backprop"], FAST.with_(epochs=5, hurdles=passing)).val_curve == curve
    stopped = evaluate(SEEDS["backprop"], FAST.with_(epochs=5, hurdles=passing + ((4, curve[3]),)))
    assert stopped.status == "hurdle" and stopped.val_curve == curve[:4] and "epoch 4" in stopped.message
    with pytest.raises(TaskError, match="hurdles must be"):
        evaluate(SEEDS["backprop"], FAST.with_(hurdles=((0, 0.5),)))


def test_hurdle_stops_a_run_at_the_given_epoch():
    r = evaluate(SEEDS["backprop"], FAST.with_(epochs=10, hurdle_epoch=2, hurdle_acc=0.999))
    assert r.status == "hurdle" and len(r.val_curve) == 2 and "epoch 2" in r.message
    assert evaluate(SEEDS["backprop_fro"], FAST.with_(hurdle_epoch=2)).status == "ok"  # default: chance + 1.5 points


@pytest.mark.parametrize("change, message", [
    (dict(model_arch="resnet"), "unknown model arch 'resnet'"),
    (dict(model_activation="rellu"), "did you mean 'relu'"),
    (dict(optimizer="adamw"), "unknown optimizer 'adamw'"),
    (dict(epochs=0), "epochs must be positive"),
    (dict(model_arch="wrn", model_depth=12), "WRN depth must be 6n\\+4"),
])
def test_bad_tasks_raise_a_one_line_task_error(change, message):
    with pytest.raises(TaskError, match=message):
        evaluate(SEEDS["backprop"], FAST.with_(**change))


def test_missing_cifar10_folder_raises_the_clear_error(tmp_path):
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        evaluate(SEEDS["backprop"], TaskSpec(dataset="cifar10", data_root=str(tmp_path / "nowhere")))


@pytest.mark.parametrize("arch", ["convnet", "wrn"])
def test_fake_cifar10_trains_end_to_end(fake_cifar10_root, monkeypatch, arch):
    monkeypatch.setattr(cifar10, "CIFAR10_CLASS", UncheckedCIFAR10)
    task = TaskSpec(dataset="cifar10", data_root=str(fake_cifar10_root), epochs=1, batch_size=16,
                    optimizer="momentum", schedule="cosine").with_(model_arch=arch, model_depth=10, model_width=1)
    for text in (SEEDS["backprop"], SEEDS["dfa"], "add(norm_fro(g), scale_0.01(bn(gh)))"):
        r = evaluate(text, task)
        assert r.status == "ok", r.message
        assert r.steps == 6 and len(r.val_curve) == 1 and 0.0 <= r.test_acc <= 1.0


def test_a_task_is_checked_once_per_process(monkeypatch) -> None:
    ev = importlib.import_module("evaluators.evaluate")   # the module: the package exports the function by that name
    calls = []
    monkeypatch.setattr(ev, "check_task", lambda task: calls.append(task))
    ev._check_once.cache_clear()
    task = TaskSpec(dataset="synthetic", epochs=1, seed=123)
    for _ in range(3):
        ev.evaluate("left(g, g)", task)
    ev.evaluate("left(g, g)", task.with_(lr=0.2))
    assert calls == [task, task.with_(lr=0.2)]
    ev._check_once.cache_clear()
