"""Optimizers and learning-rate schedules for the training loop: a lean SGD (plain or momentum), Adam, and the
constant / cosine-with-warm-up / step schedules.

SGD is written out because a search trains thousands of tiny networks: on the digits MLP, ``torch.optim.SGD``'s
``step`` and ``zero_grad`` cost ~75 µs of Python per step (profiler ranges, hooks, per-group bookkeeping), a tenth of
the whole step. ``LeanSGD`` makes the same update with the same float operations in two foreach calls.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from evaluators.task import TaskSpec

WARMUP_FRACTION = 0.1   # Backprop Evolution App. B: 10% warm-up, then cosine decay


class LeanSGD:
    """``torch.optim.SGD`` with dampening 0 and no Nesterov: ``d = grad + wd * p``; with momentum
    ``buf = momentum * buf + d`` (``buf = d`` at the first step); ``p -= lr * (buf or d)``. Bit for bit the same
    parameters as torch.optim (tests/evaluators/test_optim.py). The learning rate lives in ``param_groups[0]["lr"]``
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
        if all(p.grad is not None for p in self.params):
            index = range(len(self.params))
        else:  # a parameter the loss did not reach this step keeps its value and its buffer, as in torch.optim
            index = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in index]
        grads = [self.params[i].grad for i in index]
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            if any(self.buffers[i] is None for i in index):
                for i, g in zip(index, grads):
                    if self.buffers[i] is None:
                        self.buffers[i] = g.clone()
                    else:
                        self.buffers[i].mul_(self.momentum).add_(g)
            else:
                bufs = [self.buffers[i] for i in index]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, grads)
            grads = [self.buffers[i] for i in index]
        torch._foreach_add_(params, grads, alpha=-self.param_groups[0]["lr"])


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
