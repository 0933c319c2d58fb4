"""The training loop: SGD / momentum / Adam, constant, cosine-with-warm-up or step schedules, early stops.

One step is written once and kept lean: the rule-driven backward is inside ``loss.backward()``, and the only sync
per step is the loss's finiteness check. A non-finite backward value enters the weight gradients it feeds, so the
next step's loss is non-finite: a NaN ends the run within one step, without a check per layer.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.data import Splits, batches
from evaluators.task import EvalResult, TaskSpec

WARMUP_FRACTION = 0.1   # Backprop Evolution App. B: 10% warm-up, then cosine decay
CHANCE_MARGIN = 0.015   # default hurdle: at most 1.5 points above chance


def make_optimizer(model: nn.Module, task: TaskSpec) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if task.optimizer == "adam":  # FTPROP-MB's setting: coupled L2 weight decay, default betas
        return torch.optim.Adam(params, lr=task.lr, weight_decay=task.weight_decay)
    momentum = task.momentum if task.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=task.lr, momentum=momentum, weight_decay=task.weight_decay)


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


@torch.no_grad()
def accuracy(model: nn.Module, split, splits: Splits, batch_size: int = 1024) -> float:
    was = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=split.device)
    for x, y in batches(split, batch_size, generator=None, shuffle=False, normalize=splits.normalize):
        correct += (model(x).argmax(1) == y).sum()
    model.train(was)
    return correct.item() / max(1, len(split))


class Diverged(Exception):
    pass


def train(model: nn.Module, splits: Splits, task: TaskSpec) -> EvalResult:
    """Train ``model`` (with its rule, if one is installed) on ``splits`` as ``task`` says."""
    start = time.perf_counter()
    device = splits.train.device
    params = list(model.parameters())
    opt = make_optimizer(model, task)
    n = len(splits.train)
    per_epoch = math.ceil(n / task.batch_size)
    if task.max_train_batches:
        per_epoch = min(per_epoch, task.max_train_batches)
    sched = None if task.schedule == "constant" else torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(task, s, per_epoch))
    gen = torch.Generator(device=device).manual_seed(task.seed)
    chance = 1.0 / splits.num_classes
    hurdle = task.hurdle_acc if task.hurdle_acc >= 0 else chance + CHANCE_MARGIN
    val_curve: list[float] = []
    loss_curve: list[float] = []
    steps = 0
    status, message = "ok", ""
    model.train()
    try:
        for epoch in range(1, task.epochs + 1):
            total = torch.zeros((), device=device)
            count = 0
            for i, (x, y) in enumerate(batches(splits.train, task.batch_size, generator=gen, shuffle=True,
                                               augment=splits.augment, normalize=splits.normalize)):
                if i == per_epoch:
                    break
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if not torch.isfinite(loss).item():
                    raise Diverged(f"non-finite loss at epoch {epoch}, step {steps + 1}")
                opt.step()
                if sched is not None:
                    sched.step()
                total += loss.detach()
                count += 1
                steps += 1
            loss_curve.append(total.item() / max(1, count))
            if not all(bool(torch.isfinite(p).all()) for p in params):  # a NaN from the epoch's last backward
                raise Diverged(f"non-finite weights after epoch {epoch}")
            val_curve.append(accuracy(model, splits.val, splits))
            if task.hurdle_epoch and epoch == task.hurdle_epoch and val_curve[-1] <= hurdle:
                status, message = "hurdle", f"validation accuracy {val_curve[-1]:.4f} at epoch {epoch} <= {hurdle:.4f}"
                break
    except Diverged as exc:
        status, message = "diverged", str(exc)
    if status == "diverged":
        return EvalResult(status, 0.0, 0.0, tuple(val_curve), tuple(loss_curve), steps,
                          time.perf_counter() - start, str(device), message)
    test = accuracy(model, splits.test, splits)
    return EvalResult(status, val_curve[-1] if val_curve else 0.0, test, tuple(val_curve), tuple(loss_curve), steps,
                      time.perf_counter() - start, str(device), message)
