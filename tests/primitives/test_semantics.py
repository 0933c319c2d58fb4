"""What equations compute: the backprop identity against autograd, the seeds against their definitions, Table 1 on
dense and conv operands, running averages, and every registered function."""
import pytest
import torch
import torch.nn.functional as F

import primitives as P
import primitives.formatting
import primitives.text
from tests.primitives.table1 import FREE_FORM, PAPER_FORM



def real_layer(kind: str, seed: int = 0):
    """hp -> ReLU -> linear/conv -> hp_next with autograd: returns the DSL operands and autograd's dL/dhp."""
    gen = torch.Generator().manual_seed(seed)

    def rn(*shape):  # doubles: the identity is checked to 1e-12
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    if kind == "dense":
        hp = rn(6, 5).requires_grad_(True)
        w, bias = rn(4, 5), rn(4)
        hp_next = F.linear(hp.relu(), w, bias)
        maps = P.LinearMaps((5,), (4,))
    else:
        hp = rn(3, 2, 7, 7).requires_grad_(True)
        w, bias = rn(3, 2, 3, 3), rn(3)
        hp_next = F.conv2d(hp.relu(), w, bias, stride=2, padding=1)
        maps = P.ConvMaps((2, 7, 7), tuple(hp_next.shape[1:]), stride=2, padding=1)
    b_next = rn(*hp_next.shape)
    (grad,) = torch.autograd.grad(hp_next, hp, b_next)
    hp = hp.detach()
    env = {"hp": hp, "h": hp.relu(), "dact": (hp > 0).double(), "hp_next": hp_next.detach(), "b_next": b_next,
           "bL": rn(hp.shape[0], 3), "W": w.transpose(0, 1),
           "R": rn(*w.transpose(0, 1).shape),
           "RL": rn(3, hp[0].numel())}
    return env, P.LayerContext(maps, torch.Generator().manual_seed(1)), grad, w


def run(text, env, ctx):
    return P.compile(text)(dict(env), ctx)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_b_next_times_w_transposed_times_dact_is_autograds_g(kind):
    env, ctx, grad, _ = real_layer(kind)
    torch.testing.assert_close(run("mul(mm(b_next, T(W)), dact)", env, ctx), grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(run(P.SEEDS["backprop"], env, ctx), grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_seeds_compute_their_definitions(kind):
    env, ctx, grad, w = real_layer(kind)
    dact, b_next = env["dact"], env["b_next"]

    def down(matrix):  # an independent down-map: autograd through the same layer with another weight
        x = env["h"].clone().requires_grad_(True)
        y = F.linear(x, matrix.transpose(0, 1)) if kind == "dense" else F.conv2d(x, matrix.transpose(0, 1), stride=2,
                                                                                   padding=1)
        return torch.autograd.grad(y, x, b_next)[0]

    expected = {
        "backprop": grad,
        "backprop_chain": grad,
        "fa": down(env["R"]) * dact,
        "sign_symmetry": down(env["W"].sign()) * dact,
        "dfa": (env["bL"] @ env["RL"]).reshape(env["hp"].shape) * dact,
        "backprop_fro": grad / grad.norm(),
        "backprop_elem2": grad / grad.flatten().norm(p=2),
        "ftp_sh": down(env["W"]) * (1 - torch.tanh(env["hp"]) ** 2),
        "sste": down(env["W"]) * (env["hp"].abs() <= 1),
        "ftp_sh_qrelu": down(env["W"]) * (1 - torch.tanh(2 * env["hp"] - 1) ** 2),
        "sste_qrelu": down(env["W"]) * ((env["hp"] >= 0) & (env["hp"] <= 1)),
    }
    assert set(expected) == set(P.SEEDS)
    for name, value in expected.items():
        torch.testing.assert_close(run(P.SEEDS[name], env, ctx), value.double(), msg=name)


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("label, text", list(PAPER_FORM.items()) + list(FREE_FORM.items()))
def test_table1_equations_compute_finite_layer_shaped_values(kind, label, text):
    probe = P.make_probe(kind)
    eq = P.parse(text)
    assert P.parse(P.format(eq)) == eq
    out = P.compile(eq)(probe.env(), probe.context())
    assert out.shape == probe.tensors["hp"].shape, label
    assert torch.isfinite(out).all(), label
    assert P.check(eq), label


def test_rules_ask_only_for_what_they_use():
    assert P.compile("left(g, mhat(dfa))").inputs == {"b_next", "W", "dact"}
    assert P.compile("mul(mm(bL, RL), dact)").inputs == {"bL", "RL", "dact"}
    assert P.compile("add(bn(hp), sgn(h))").inputs == {"hp", "h"}
    assert P.compile("add(drop_0.1(g), h)").stochastic and not P.compile("left(g, g)").stochastic


def test_running_forms_follow_the_documented_recursion():
    probe = P.make_probe("dense")
    xs = [torch.randn(8, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    m, q = xs[0].mean(0), (xs[0] ** 2).mean(0)   # started at the first batch's own statistics
    for x in xs[1:]:
        m, q = 0.9 * m + 0.1 * x.mean(0), 0.9 * q + 0.1 * (x ** 2).mean(0)
    std = (q - m * m).clamp_min(0).sqrt()
    x = xs[-1]
    expected = {"mhat": m.expand_as(x), "shat": std.expand_as(x), "bn": (x - m) / (std + 1e-5)}
    for form, value in expected.items():
        rule, ctx = P.compile(f"left({form}(hp), g)"), probe.context()
        for step in xs:  # one call per training step, on this layer's own state
            env = probe.env()
            env["hp"] = step
            out = rule(env, ctx)
        torch.testing.assert_close(out, value, msg=form)


def test_norm_divisions_use_the_matrix_view():
    x = torch.tensor([[3.0, -4.0], [1.0, 0.0]])
    ctx = P.LayerContext(P.LinearMaps((2,), (2,)))
    f = {name: fn.impl for name, fn in P.FUNCTIONS.items()}
    torch.testing.assert_close(f["norm_row_2"](x, ctx), torch.tensor([[0.6, -0.8], [1.0, 0.0]]))
    torch.testing.assert_close(f["norm_col_1"](x, ctx), torch.tensor([[0.75, -1.0], [0.25, 0.0]]))
    torch.testing.assert_close(f["norm_1"](x, ctx), x / 4.0)          # max column abs-sum
    torch.testing.assert_close(f["norm_inf"](x, ctx), x / 7.0)        # max row abs-sum
    torch.testing.assert_close(f["norm_-inf"](x, ctx), x / 1.0)       # min row abs-sum
    torch.testing.assert_close(f["norm_elem_0"](x, ctx), x / 3.0)     # count of non-zeros
    torch.testing.assert_close(f["norm_fro"](x, ctx), f["norm_elem_2"](x, ctx))
    conv = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(f["norm_row_2"](conv, ctx).flatten(1).norm(dim=1), torch.ones(2))


def test_every_function_keeps_shape_and_is_finite_on_a_benign_input():
    """gplearn-style extension check: each registered function, on each role it accepts (name in the message)."""
    probe = P.make_probe("conv")
    ctx = probe.context()
    values = {"Layer": probe.tensors["hp"].abs() + 0.5, "Next": probe.tensors["b_next"].abs() + 0.5,
              "Out": probe.tensors["bL"].abs() + 0.5, "Weight": probe.tensors["W"].abs() + 0.5,
              "WeightT": probe.tensors["W"].transpose(0, 1).abs() + 0.5, "Feedback": probe.tensors["RL"].abs() + 0.5,
              "FeedbackT": probe.tensors["RL"].t().abs() + 0.5}
    pset = P.make_pset(hard_threshold=True)
    for prim in pset.mapping.values():
        if prim.arity == 0 or prim.name.startswith("mm:"):
            continue
        fn = P.FUNCTIONS[prim.name.split(":")[0]]
        args = [values[r.__name__] for r in prim.args]
        out = fn.impl(*args, ctx)
        assert out.shape == values[prim.ret.__name__].shape, prim.name
        assert torch.isfinite(out).all(), prim.name


def test_compile_parses_text_once_and_formats_only_when_asked(monkeypatch):
    """An equation's trip is one parse and one format: the worker compiles the controller's text without formatting it
    back, and ``Rule.text`` is still the normalised text form."""
    calls = {"parse": 0, "format": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(primitives.text, "_Parser", counting("parse", primitives.text._Parser))
    monkeypatch.setattr(primitives.formatting, "_fmt", counting("format", primitives.formatting._fmt))
    rule = P.compile("left(clip_1.0(g),  g)")
    assert calls == {"parse": 1, "format": 0}
    assert rule.text == "left(clip_1(g), g)" and rule.given(frozenset({"g"})).text == rule.text
    eq = P.parse("mul(mm(b_next, T(W)), dact)")
    calls["format"] = 0
    rule = P.compile(eq)
    eq.clear()                                   # the rule keeps its own copy of the tree
    assert calls["format"] == 0 and rule.text == "mul(mm(b_next, T(W)), dact)"
