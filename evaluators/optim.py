"""Optimizers and learning-rate schedules for the training loop: a lean SGD (plain or momentum), Adam, and the
constant / cosine-with-warm-up / step schedules.

SGD skips torch.optim's wrapper because a search trains thousands of tiny networks: on the digits MLP,
``torch.optim.SGD``'s ``step`` and ``zero_grad`` spend a sizeable share of the whole step in Python (profiler
ranges, hooks, per-group bookkeeping; benchmarks/README.md). ``LeanSGD`` calls the same functional update directly.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.optim.sgd import sgd

from evaluators.task import TaskSpec

WARMUP_FRACTION = 0.1   # Backprop Evolution App. B: 10% warm-up, then cosine decay


class LeanSGD:
    """``torch.optim.SGD`` (dampening 0, no Nesterov) without its per-step machinery: ``step`` calls the same
    functional ``torch.optim.sgd.sgd`` that ``SGD.step`` calls, with the same momentum buffers, so the parameters are
    bit for bit torch.optim's (tests/evaluators/test_optim.py). The learning rate lives in ``param_groups[0]["lr"]``
    like torch.optim's, so a schedule sets it the same way for either kind of optimizer."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.params: list[Tensor] = [p for p in params if p.requires_grad]
        self.param_groups = [{"params": self.params, "lr": lr}]
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # A parameter the loss did not reach this step keeps its value and its buffer, as in torch.optim.
        index = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in index]
        buffers = [self.buffers[i] for i in index]   # sgd() fills a first step's None entries in place
        sgd(params, [p.grad for p in params], buffers, weight_decay=self.weight_decay, momentum=self.momentum,
            lr=self.param_groups[0]["lr"], dampening=0.0, nesterov=False, maximize=False, foreach=True)
        for i, buf in zip(index, buffers):
            self.buffers[i] = buf


def make_optimizer(model: nn.Module, task: TaskSpec) -> LeanSGD | torch.optim.Optimizer:
    params = list(model.parameters())
    if task.optimizer == "adam":  # FTPROP-MB's setting: coupled L2 weight decay, default betas
        return torch.optim.Adam(params, lr=task.lr, weight_decay=task.weight_decay)
    momentum = task.momentum if task.optimizer == "momentum" else 0.0
    return LeanSGD(params, lr=task.lr, momentum=momentum, weight_decay=task.weight_decay)


def lr_factor(task: TaskSpec, step: int, steps_per_epoch: int) -> float:
    """Learning-rate multiplier before optimizer step ``step`` (0-based)."""
    if task.schedule == "cosine":
        total = task.epochs * steps_per_epoch
        warm = max(1, int(WARMUP_FRACTION * total))
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
    if task.schedule == "step":
        epoch = step // steps_per_epoch + 1
        return task.lr_decay ** sum(epoch >= e for e in task.lr_decay_epochs)
    return 1.0


def set_lr(opt: LeanSGD | torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr
