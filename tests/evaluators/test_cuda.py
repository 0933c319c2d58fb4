"""On a CUDA device (skipped where there is none): `--device cuda` trains as the CPU does. The backprop seed gives
autograd's gradients, a training replays bit for bit, evaluate_many gives each member evaluate's gradients, and
rules reach the accuracy they reach on the CPU (the data order comes from a CUDA generator, so only the mean over
seeds compares)."""
import statistics

import pytest
import torch
import torch.nn.functional as F

from evaluators import ModelSpec, TaskSpec, build_model, evaluate, evaluate_many, install_rule
from primitives import SEEDS, compile, parse
from tests.evaluators.test_evaluate_many import assert_same_gradients

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = "cuda"
DIGITS = TaskSpec(epochs=1, max_train_batches=3, device=CUDA).with_(model_widths=(32, 16))
FAST = TaskSpec(epochs=6).with_(model_widths=(32, 32))
CASES = {"mlp": (ModelSpec(arch="mlp", widths=(32, 16)), (64,)), "convnet": (ModelSpec(arch="convnet"), (3, 16, 16))}


def gradients(arch: str, text: str | None, seed: int) -> dict[str, torch.Tensor]:
    spec, shape = CASES[arch]
    torch.manual_seed(seed)
    model = build_model(spec, shape, 10).to(CUDA)
    install_rule(model, None if text is None else compile(parse(text)), seed=seed, n_classes=10)
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = torch.randn(16, *shape, generator=gen).to(CUDA), torch.randint(0, 10, (16,), generator=gen).to(CUDA)
    F.cross_entropy(model(x), y).backward()
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("arch", list(CASES))
def test_backprop_seed_gives_autograds_parameter_gradients_on_cuda(arch):
    for seed in range(2):
        plain, rule = gradients(arch, None, seed), gradients(arch, SEEDS["backprop"], seed)
        assert plain.keys() == rule.keys()
        for name in plain:
            assert rule[name].is_cuda
            torch.testing.assert_close(rule[name], plain[name], rtol=1e-4, atol=1e-6, msg=f"{arch} {name}")


@pytest.mark.parametrize("text", [SEEDS["backprop"], SEEDS["dfa"], "add(drop_0.1(g), bn(gh))"])
def test_a_training_on_cuda_replays_bit_for_bit(text):
    task = FAST.with_(device=CUDA)
    a, b = evaluate(text, task), evaluate(text, task)
    assert a.status == "ok" and a.device.startswith(CUDA)
    assert (a.val_curve, a.loss_curve, a.test_acc) == (b.val_curve, b.loss_curve, b.test_acc)


@pytest.mark.parametrize("rules", [(SEEDS["backprop"], SEEDS["fa"]), (SEEDS["dfa"], "add(g, mhat(gh))")])
def test_evaluate_many_gives_each_member_evaluates_gradients_on_cuda(rules, monkeypatch):
    members = [(text, DIGITS.with_(seed=seed)) for seed, text in enumerate(rules * 2)]
    assert_same_gradients(members, monkeypatch)


@pytest.mark.parametrize("text", [SEEDS["backprop"], SEEDS["fa"], SEEDS["backprop_fro"]])
def test_a_rule_reaches_on_cuda_the_mean_accuracy_it_reaches_on_the_cpu(text):
    seeds = range(8)
    on = {device: [r.val_acc for r in evaluate_many([(text, FAST.with_(seed=s, device=device)) for s in seeds])]
          for device in ("cpu", CUDA)}
    assert abs(statistics.mean(on[CUDA]) - statistics.mean(on["cpu"])) <= 0.03, on


def test_a_sign_network_trains_with_ftp_sh_on_cuda():
    task = TaskSpec(optimizer="adam", lr=3e-3, epochs=4, device=CUDA).with_(model_activation="sign_ftp_sh")
    result = evaluate(None, task)
    assert result.status == "ok" and result.val_acc > 0.8
