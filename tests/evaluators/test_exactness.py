"""The backprop seed is backprop: parameter gradients equal autograd's; FA and DFA equal a hand-written version."""
import pytest
import torch
import torch.nn.functional as F

from evaluators import ModelSpec, build_model, install_rule
from evaluators.models import links
from primitives import SEEDS, compile, parse

CASES = {
    "mlp": (ModelSpec(arch="mlp", widths=(32, 16)), (64,)),
    "convnet": (ModelSpec(arch="convnet"), (3, 16, 16)),
    "wrn": (ModelSpec(arch="wrn", depth=10, width=1), (3, 16, 16)),
}


def gradients(arch: str, text: str | None, seed: int = 0) -> dict[str, torch.Tensor]:
    spec, shape = CASES[arch]
    torch.manual_seed(seed)
    model = build_model(spec, shape, 10)
    install_rule(model, None if text is None else compile(parse(text)), seed=seed, n_classes=10)
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = torch.randn(16, *shape, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    F.cross_entropy(model(x), y).backward()
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("arch", list(CASES))
@pytest.mark.parametrize("seed_name", ["backprop", "backprop_chain"])
def test_backprop_seed_gives_autograds_parameter_gradients(arch, seed_name):
    for seed in range(2):
        plain, rule = gradients(arch, None, seed), gradients(arch, SEEDS[seed_name], seed)
        assert plain.keys() == rule.keys()
        for name in plain:
            torch.testing.assert_close(rule[name], plain[name], rtol=0, atol=1e-6, msg=f"{arch} {name}")


def test_a_different_rule_changes_the_gradients():
    plain, fro = gradients("mlp", None), gradients("mlp", SEEDS["backprop_fro"])
    assert not torch.allclose(plain["first.weight"], fro["first.weight"])
    torch.testing.assert_close(plain["chain.1.op.weight"], fro["chain.1.op.weight"])  # top layer: from the loss


@pytest.mark.parametrize("rule_name", ["fa", "dfa"])
def test_fa_and_dfa_equal_a_straightforward_implementation(rule_name):
    torch.manual_seed(0)
    model = build_model(ModelSpec(arch="mlp", widths=(32, 16)), (64,), 10)
    install_rule(model, compile(parse(SEEDS[rule_name])), seed=0, n_classes=10)
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(16, 64, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    if rule_name == "dfa":  # RL is drawn at the first step, when the layer size is known
        feedback = [ln.RL for ln in links(model)]

    # By hand: forward, then b_L = dCE/dlogits and b_i = (b_{i+1} R_{i+1}) * relu'(hp_i) (FA) or
    # b_i = (b_L RL_i) * relu'(hp_i) (DFA); dW = b^T h_prev.
    first, (l1, l2) = model.first, links(model)
    weights = [first.weight, l1.op.weight, l2.op.weight]
    biases = [first.bias, l1.op.bias, l2.op.bias]
    hp1 = x @ weights[0].t() + biases[0]
    h1 = hp1.relu()
    hp2 = h1 @ weights[1].t() + biases[1]
    h2 = hp2.relu()
    out = h2 @ weights[2].t() + biases[2]
    b3 = (torch.softmax(out, 1) - F.one_hot(y, 10)) / len(y)
    if rule_name == "fa":
        b2 = (b3 @ l2.R) * (hp2 > 0)
        b1 = (b2 @ l1.R) * (hp1 > 0)
    else:
        b2 = (b3 @ feedback[1]) * (hp2 > 0)
        b1 = (b3 @ feedback[0]) * (hp1 > 0)
    expected = [b1.t() @ x, b2.t() @ h1, b3.t() @ h2]
    for w, b, e, bias, bb in zip(weights, (b1, b2, b3), expected, biases, (b1, b2, b3)):
        torch.testing.assert_close(w.grad, e.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bias.grad, bb.sum(0).detach(), rtol=1e-5, atol=1e-6)


def test_feedback_matrices_are_fixed_and_come_from_the_seed():
    def matrices(seed):
        torch.manual_seed(123)  # the same weights; only the rule seed differs
        model = build_model(ModelSpec(widths=(8, 8)), (4,), 3)
        install_rule(model, compile(parse(SEEDS["fa"])), seed=seed, n_classes=3)
        return [ln.R.clone() for ln in links(model)]
    a, b, c = matrices(0), matrices(0), matrices(1)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not any(torch.equal(u, v) for u, v in zip(a, c))
