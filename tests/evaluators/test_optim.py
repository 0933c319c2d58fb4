"""LeanSGD makes torch.optim.SGD's updates exactly, and the schedules give the learning rates the README states."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators import TaskSpec
from evaluators.optim import LeanSGD, lr_factor, make_optimizer, set_lr


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


def run(make, steps: int = 6, skip_first_layer_at: int = -1, lrs=None) -> list[torch.Tensor]:
    model = net()
    opt = make(model.parameters())
    gen = torch.Generator().manual_seed(1)
    for step in range(steps):
        x, y = torch.randn(5, 8, generator=gen), torch.randint(0, 3, (5,), generator=gen)
        if lrs is not None:
            set_lr(opt, lrs[step])
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if step == skip_first_layer_at:  # a parameter the loss did not reach this step
            model[0].weight.grad = None
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.0, 5e-4), (0.9, 5e-4)])
def test_lean_sgd_matches_torch_sgd_bit_for_bit(momentum, weight_decay):
    ours = run(lambda ps: LeanSGD(ps, lr=0.1, momentum=momentum, weight_decay=weight_decay))
    theirs = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=weight_decay))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_lean_sgd_skips_parameters_without_a_gradient_as_torch_does():
    for k in (0, 3):  # before and after its momentum buffer exists
        ours = run(lambda ps: LeanSGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4), skip_first_layer_at=k)
        theirs = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4), skip_first_layer_at=k)
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_a_changing_learning_rate_is_applied_like_torch_optims():
    lrs = [0.1, 0.05, 0.2, 0.0, 0.1, 0.01]
    ours = run(lambda ps: LeanSGD(ps, lr=1.0, momentum=0.9), lrs=lrs)
    theirs = run(lambda ps: torch.optim.SGD(ps, lr=1.0, momentum=0.9), lrs=lrs)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_make_optimizer_picks_the_task_optimizer():
    model = net()
    assert isinstance(make_optimizer(model, TaskSpec(optimizer="adam")), torch.optim.Adam)
    sgd = make_optimizer(model, TaskSpec(optimizer="sgd", momentum=0.9))
    assert isinstance(sgd, LeanSGD) and sgd.momentum == 0.0  # plain SGD ignores the momentum field
    assert make_optimizer(model, TaskSpec(optimizer="momentum", momentum=0.9)).momentum == 0.9


def test_cosine_schedule_warms_up_over_ten_percent_then_decays_to_zero():
    task = TaskSpec(epochs=10, schedule="cosine")  # 100 steps: 10 of warm-up
    factors = [lr_factor(task, s, 10) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))


def test_step_schedule_decays_before_the_listed_epochs():
    task = TaskSpec(epochs=4, schedule="step", lr_decay_epochs=(2, 4), lr_decay=0.1)
    assert [lr_factor(task, e * 5, 5) for e in range(4)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
