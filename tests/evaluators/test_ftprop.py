"""FTPROP-MB: official forwards, the rules against a transcription of the official backward code, the DSL seeds against
the direct route step for step, backprop's zero gradients on sign nets, and the official ConvNet4 / ConvNet8."""
import pytest
import torch
import torch.nn.functional as F

from evaluators import ACTIVATIONS, ModelSpec, TaskSpec, build_model, evaluate, install_rule
from evaluators.ftprop import RULES
from evaluators.models import links
from evaluators.models.ftprop_convnets import DropoutLink
from evaluators.train import make_optimizer
from primitives import SEEDS, compile, parse

N = 64   # batch: the official code divides and multiplies by it


def rand(*shape, seed=0, scale=1.5, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * scale


def rule_grad(name: str, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The gradient at z that autograd computes through activation ``name`` when g arrives at its output."""
    z = z.clone().requires_grad_(True)
    (ACTIVATIONS[name].fn(z) * g).sum().backward()
    return z.grad


# ---- forwards ---------------------------------------------------------------------------------------------------

def test_sign_is_the_official_step11_with_sign_of_zero_minus_one():
    z = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert ACTIVATIONS["sign"].fn(z).tolist() == [-1, -1, -1, -1, 1, 1]
    z = rand(1000)
    torch.testing.assert_close(ACTIVATIONS["sign"].fn(z), torch.sign(z).clamp(min=0) * 2 - 1, rtol=0, atol=0)


def test_qrelu_is_the_official_2bit_staircase_levels_and_thresholds():
    z = torch.tensor([-1.0, 0.0, 1e-6, 0.5, 0.5 + 1e-6, 1.0, 1.0 + 1e-6, 7.0])
    third = 1 / 3
    torch.testing.assert_close(ACTIVATIONS["qrelu"].fn(z), torch.tensor([0, 0, third, third, 2 * third, 2 * third,
                                                                         1, 1]), rtol=0, atol=1e-7)
    z = rand(10_000)
    x = z * 2   # official StaircaseF, nsteps=3: ceil((nsteps-1)x), clamp to [0, nsteps], times 1/nsteps
    official = x.ceil().clamp(min=0, max=3) * (1.0 / 3)
    assert torch.equal(ACTIVATIONS["qrelu"].fn(z), official)
    assert len(torch.unique(official)) == 4


def test_full_precision_baselines_are_relu_and_saturated_relu():
    z = rand(1000)
    assert torch.equal(ACTIVATIONS["relu"].fn(z), z.clamp(min=0))
    assert torch.equal(ACTIVATIONS["sat_relu"].fn(z), F.relu(z).clamp(max=1))   # official ThresholdReLU


@pytest.mark.parametrize("name", [f"{f}_{r}" for f, rules in RULES.items() for r in rules])
def test_every_direct_route_activation_has_its_hard_threshold_forward(name):
    z = rand(500)
    assert torch.equal(ACTIVATIONS[name].fn(z), ACTIVATIONS[name.split("_")[0]].fn(z))


# ---- rules: closed forms and the official code ----------------------------------------------------------------

def test_ftp_sh_with_scaling_is_g_times_sech2_and_sste_is_the_window():
    z, g = rand(N, 50), rand(N, 50, seed=1)
    g[0, :10] = 0.0   # t = 0: ignored units
    torch.testing.assert_close(rule_grad("sign_ftp_sh", z, g), g * (1 - torch.tanh(z) ** 2), rtol=1e-15, atol=0)
    assert torch.equal(rule_grad("sign_sste", z, g), g * (z.abs() <= 1))
    assert torch.equal(rule_grad("sign_ste", z, g), g)
    # The saturated hinge with scaling is SSTE up to the measure-zero points z = ±1 (ftprop.md §1.6).
    assert torch.equal(rule_grad("sign_sat_hinge", z, g), rule_grad("sign_sste", z, g))
    torch.testing.assert_close(rule_grad("qrelu_ftp_sh", z, g), g * (1 - torch.tanh(2 * z - 1) ** 2), rtol=1e-15,
                               atol=0)
    assert torch.equal(rule_grad("qrelu_sste", z, g), g * ((z >= 0) & (z <= 1)))


def _official_step(rule: str, scaled: bool, z, go):
    """Transcription of targetprop.py's backward functions and StepF.backward (afriesen/ftprop a72b2bb)."""
    n = go.size(0)
    t = -torch.sign(go)
    if rule == "ftp_sh":        # tanh_backward(xscale=1): z = soft_hinge(input, t) - 1
        s = (torch.tanh(-(z * t)) + 1) - 1
        grad = (1 - s * s) * -t / n
    else:                       # dhinge_dz(margin, trunc_thresh), norm_by_size
        margin, trunc = {"sat_hinge": (1, 2), "perceptron": (0, float("inf")), "hinge": (1, float("inf"))}[rule]
        tz = z * t
        grad = ((tz > margin - trunc) * (tz <= margin)).to(z.dtype) * -t * (1.0 / n)
    return grad * n * go.abs() if scaled else grad


def _official_staircase(rule: str, scaled: bool, x, go, nsteps=3, m=1, q=2):
    """Transcription of StaircaseF.backward."""
    if rule == "sste":
        return go * (torch.le(x, 1) * torch.ge(x, 0)).to(x.dtype)
    t = torch.sign(-go)
    if rule == "ftp_sh":
        s = (torch.tanh(-((2.0 * x - 1) * t)) + 1) - 1
        grad = (1 - s * s) * -t
    else:
        z, m, q = x * (nsteps - 1), m * (nsteps - 1), q * (nsteps - 1)
        pos = (z + q - m).clamp(0, nsteps).ceil() - (z - m).clamp(0, nsteps).ceil()
        neg = (z + m).clamp(0, nsteps).ceil() - (z + m - q).clamp(0, nsteps).ceil()
        grad = (-t * pos * (t > 0).to(x.dtype) + neg * (t < 0).to(x.dtype)) * (1.0 / nsteps)
    return grad * go.abs() if scaled else grad * (1.0 / go.size(0))


@pytest.mark.parametrize("forward, rule", [(f, r) for f, rules in RULES.items() for r in rules
                                           if r not in ("sste", "ste")])
def test_target_rules_match_the_official_backward(forward, rule):
    base, scaled = rule.removesuffix("_unscaled"), not rule.endswith("_unscaled")
    for seed in range(3):
        z, g = rand(N, 40, seed=seed), rand(N, 40, seed=seed + 10)
        g[:, :4] = 0.0
        official = (_official_step if forward == "sign" else _official_staircase)(base, scaled, z, g)
        # rtol: the official code rounds tanh through soft_hinge(.) - 1 and scales by 1/N then N
        torch.testing.assert_close(rule_grad(f"{forward}_{rule}", z, g), official, rtol=1e-12, atol=1e-14)
        assert torch.all(rule_grad(f"{forward}_{rule}", z, g)[:, :4] == 0)   # g = 0: t = 0, no signal


def test_qrelu_staircase_sste_matches_official_and_the_sat_hinge_sends_no_signal_outside_the_staircase():
    z, g = rand(N, 40), rand(N, 40, seed=1)
    assert torch.equal(rule_grad("qrelu_sste", z, g), _official_staircase("sste", True, z, g))
    far = torch.full((N, 4), 5.0, dtype=torch.float64)
    assert torch.all(rule_grad("qrelu_sat_hinge", far, -torch.ones_like(far)) == 0)   # target +1 above the top


def test_unscaled_ftp_sh_passes_only_the_sign_of_g():
    z, g = rand(N, 30), rand(N, 30, seed=1)
    torch.testing.assert_close(rule_grad("sign_ftp_sh_unscaled", z, g),
                               torch.sign(g) * (1 - torch.tanh(z) ** 2) / N, rtol=1e-15, atol=0)


# ---- two routes, one result -------------------------------------------------------------------------------------

def top_layer(model) -> set[str]:
    """Names of the output layer's parameters (the last link's linear map)."""
    last = links(model)[-1].op
    return {f"{name}.{p}" for name, m in model.named_modules() if m is last for p, _ in m.named_parameters()}


def grads_per_step(arch, shape, activation, equation, steps=3, n=8, widths=(32, 16)):
    """Parameter gradients of ``steps`` Adam steps (official settings) in float64, from a fixed init and data;
    dropout masks come from the global generator, seeded alike for both routes."""
    torch.manual_seed(0)
    model = build_model(ModelSpec(arch=arch, widths=widths, activation=activation), shape, 10).double()
    install_rule(model, None if equation is None else compile(parse(equation)), seed=0, n_classes=10)
    opt = make_optimizer(model, TaskSpec(optimizer="adam", lr=1e-3, weight_decay=5e-4))
    gen = torch.Generator().manual_seed(1)
    out = []
    for _ in range(steps):
        x = torch.randn(n, *shape, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 10, (n,), generator=gen)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        out.append({k: p.grad.clone() for k, p in model.named_parameters()})
        opt.step()
    return out


ROUTES = [("sign", "ftp_sh", "ftp_sh"), ("sign", "sste", "sste"), ("qrelu", "ftp_sh_qrelu", "ftp_sh"),
          ("qrelu", "sste_qrelu", "sste")]
NETS = [("mlp", (64,)), ("convnet4", (3, 16, 16)), ("convnet8", (3, 32, 32))]
# ConvNet8 (batch norm, the dropout link) once per forward keeps the suite fast.
CASES = [(*net, *route) for net in NETS for route in ROUTES if net[0] != "convnet8" or "sh" in route[2]]


@pytest.mark.parametrize("arch, shape, forward, seed_name, rule", CASES)
def test_dsl_seed_and_direct_route_give_the_same_gradients_step_for_step(arch, shape, forward, seed_name, rule):
    dsl = grads_per_step(arch, shape, forward, SEEDS[seed_name])
    direct = grads_per_step(arch, shape, f"{forward}_{rule}", None)
    for step, (a, b) in enumerate(zip(dsl, direct)):
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-12, atol=1e-15, msg=f"step {step} {name}")
            assert a[name].abs().sum() > 0, f"{name} got no signal at step {step}"


@pytest.mark.parametrize("arch, shape", [("convnet4", (3, 16, 16)), ("convnet8", (3, 32, 32))])
def test_backprop_seeds_equal_autograd_on_the_ftprop_convnets_dropout_included(arch, shape):
    plain = grads_per_step(arch, shape, "relu", None, steps=2)
    for seed_name in ("backprop", "backprop_chain"):   # g from autograd; b_next mapped down through W (and the mask)
        for a, b in zip(grads_per_step(arch, shape, "relu", SEEDS[seed_name], steps=2), plain):
            for name in a:
                torch.testing.assert_close(a[name], b[name], rtol=1e-10, atol=1e-13, msg=f"{seed_name} {name}")


@pytest.mark.parametrize("arch, shape", [("mlp", (64,)), ("convnet4", (3, 16, 16))])
@pytest.mark.parametrize("equation", [None, SEEDS["backprop"]])
def test_backprop_on_a_sign_network_gives_zero_hidden_weight_gradients(arch, shape, equation):
    (grads,) = grads_per_step(arch, shape, "sign", equation, steps=1)
    torch.manual_seed(0)
    top = top_layer(build_model(ModelSpec(arch=arch, widths=(32, 16)), shape, 10))
    assert len(top) == 2
    for name, grad in grads.items():
        if name in top:
            assert grad.abs().sum() > 0, name     # the output layer still learns from the loss
        else:
            assert torch.all(grad == 0), name     # everything below a sign gets exactly nothing


def test_direct_route_trains_a_sign_mlp_on_digits():
    task = TaskSpec(optimizer="adam", lr=3e-3, epochs=4).with_(model_activation="sign_ftp_sh")
    result = evaluate(None, task)
    assert result.status == "ok" and result.val_acc > 0.8


# ---- models -----------------------------------------------------------------------------------------------------

def hidden_inputs(model, x):
    """Each link's activation output, as handed to its linear map: the network's hidden activations."""
    seen = []
    for ln in links(model):
        ln.op.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return model(x), seen


def test_convnet4_is_the_official_architecture_and_only_activations_are_quantized():
    torch.manual_seed(0)
    model = build_model(ModelSpec(arch="convnet4", activation="sign_sste"), (3, 32, 32), 10)
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(32, 3, 5, 5), (32,), (64, 32, 5, 5), (64,), (1024, 4096), (1024,), (10, 1024), (10,)]
    logits, seen = hidden_inputs(model, rand(4, 3, 32, 32, dtype=torch.float32))
    assert [tuple(h.shape) for h in seen] == [(4, 32, 17, 17), (4, 64 * 8 * 8), (4, 1024)]
    assert all(set(torch.unique(h).tolist()) == {-1.0, 1.0} for h in seen)
    assert len(torch.unique(logits)) == logits.numel()   # real-valued logits


def test_convnet8_is_the_official_architecture_with_channel_dropout_before_conv6():
    torch.manual_seed(0)
    model = build_model(ModelSpec(arch="convnet8", activation="qrelu_ftp_sh"), (3, 32, 32), 10)
    convs = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(48, 3, 5, 5), (64, 48, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3),
                     (128, 128, 3, 3), (512, 128, 4, 4)]
    biased = [m.bias is not None for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert biased == [True, False, False, False, False, False, False, True]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 6 and all(bn.eps == 1e-4 for bn in bns)
    assert all(0 <= bn.weight.min() and bn.weight.max() <= 1 for bn in bns)   # PyTorch 0.3's uniform scales
    x = rand(8, 3, 32, 32, dtype=torch.float32)
    _, seen = hidden_inputs(model, x)
    assert [tuple(h.shape[1:]) for h in seen] == [(48, 16, 16), (64, 16, 16), (64, 8, 8), (128, 6, 6),
                                                  (128, 6, 6), (128, 4, 4), (512,)]
    assert torch.isin(seen[-1], torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])).all()   # qReLU's four levels
    drop = links(model)[5]   # Dropout2d(0.5) before conv6: whole channels dropped, the rest doubled
    assert isinstance(drop, DropoutLink) and drop.op.mask.shape == (8, 128, 1, 1)
    assert set(torch.unique(drop.op.mask).tolist()) == {0.0, 2.0}
    model.eval()
    assert torch.equal(model(x), model(x))   # no dropout at test time


def test_convnet8_rejects_sizes_the_official_code_does_not_support():
    with pytest.raises(ValueError, match="convnet8 needs 32x32 or 40x40 images"):
        build_model(ModelSpec(arch="convnet8"), (64,), 10)
