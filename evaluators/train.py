"""The training loop: SGD / momentum / Adam, constant, cosine-with-warm-up or step schedules, early stops.

One step is written once and kept lean: the rule-driven backward is inside ``loss.backward()``, and the only sync
per step is the loss's finiteness check. A non-finite backward value enters the weight gradients it feeds, so the
next step's loss is non-finite: a NaN ends the run within one step, without a check per layer. A loss that blows up
or rises above where it started ends the run too, when the task asks (``rising``), so a learning rate far too large
costs a few steps, not a training.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.data import Splits, batches
from evaluators.optim import lr_factor, make_optimizer, set_lr
from evaluators.task import EvalResult, TaskSpec

CHANCE_MARGIN = 0.015   # default hurdle: at most 1.5 points above chance


@torch.no_grad()
def accuracy(model: nn.Module, split, splits: Splits, batch_size: int = 1024) -> float:
    return _evaluate(model, split, splits, batch_size)[0]


@torch.no_grad()
def _evaluate(model: nn.Module, split, splits: Splits, batch_size: int = 1024) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``split``."""
    was = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=split.device)
    loss = torch.zeros((), device=split.device)
    for x, y in batches(split, batch_size, generator=None, shuffle=False, normalize=splits.normalize):
        out = model(x)
        correct += (out.argmax(1) == y).sum()
        loss += F.cross_entropy(out, y, reduction="sum")
    model.train(was)
    n = max(1, len(split))
    return correct.item() / n, loss.item() / n


def missed_hurdle(task: TaskSpec, epoch: int, acc: float, chance: float) -> str:
    """Why a run with validation accuracy ``acc`` after ``epoch`` stops here (status "hurdle"), or "" if it goes on:
    ``hurdle_epoch``/``hurdle_acc`` (default: chance plus ``CHANCE_MARGIN``), then each of ``hurdles``."""
    stops = list(task.hurdles)
    if task.hurdle_epoch:
        stops.append((task.hurdle_epoch, task.hurdle_acc if task.hurdle_acc >= 0 else chance + CHANCE_MARGIN))
    bar = max((a for e, a in stops if e == epoch), default=None)
    if bar is None or acc > bar:
        return ""
    return f"validation accuracy {acc:.4f} at epoch {epoch} <= {bar:.4f}"


def start_loss(first: float, classes: int) -> float:
    """Where a run's loss started, the base of its divergence factors: its first step's loss, or chance's (a
    uniform prediction's, ln C) if that is higher, so a run stalled at chance after a lucky first batch goes on."""
    return max(first, math.log(classes))


def rising(limit: float, start: float, loss: float, what: str) -> str:
    """Why a run whose training loss is ``loss`` (one step's, or an epoch's mean: ``what``) has diverged, given
    where its loss started (``start_loss``) and the task's ``diverge_step`` or ``diverge_epoch`` factor (0: off), or
    "" if it has not."""
    if not limit or loss <= limit * start:
        return ""
    return f"{what} training loss {loss:.4g} > {limit:g} x its start {start:.4g}"


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
    scheduled = task.schedule != "constant"
    gen = torch.Generator(device=device).manual_seed(task.seed)
    chance = 1.0 / splits.num_classes
    val_curve: list[float] = []
    val_loss = 0.0
    loss_curve: list[float] = []
    steps = 0
    start = math.inf   # where the loss started (start_loss), for the task's divergence factors
    status, message = "ok", ""
    model.train()
    try:
        for epoch in range(1, task.epochs + 1):
            total, count = 0.0, 0
            for i, (x, y) in enumerate(batches(splits.train, task.batch_size, generator=gen, shuffle=True,
                                               augment=splits.augment, normalize=splits.normalize)):
                if i == per_epoch:
                    break
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                value = loss.item()  # the step's one sync; a float is also the cheapest finiteness check
                if not math.isfinite(value):
                    raise Diverged(f"non-finite loss at epoch {epoch}, step {steps + 1}")
                if steps == 0:
                    start = start_loss(value, splits.num_classes)
                if why := rising(task.diverge_step, start, value, f"step {steps + 1}'s"):
                    raise Diverged(why)
                if scheduled:
                    set_lr(opt, task.lr * lr_factor(task, steps, per_epoch))
                opt.step()
                total += value
                count += 1
                steps += 1
            loss_curve.append(total / max(1, count))
            if not all(bool(torch.isfinite(p).all()) for p in params):  # a NaN from the epoch's last backward
                raise Diverged(f"non-finite weights after epoch {epoch}")
            if why := rising(task.diverge_epoch, start, loss_curve[-1], f"epoch {epoch}'s mean"):
                raise Diverged(why)
            val_acc, val_loss = _evaluate(model, splits.val, splits)
            val_curve.append(val_acc)
            message = missed_hurdle(task, epoch, val_acc, chance)
            if message:
                status = "hurdle"
                break
    except Diverged as exc:
        status, message = "diverged", str(exc)
    if status == "diverged":
        return EvalResult(status, 0.0, 0.0, tuple(val_curve), tuple(loss_curve), steps,
                          time.perf_counter() - start, str(device), message)
    test = accuracy(model, splits.test, splits)
    return EvalResult(status, val_curve[-1] if val_curve else 0.0, test, tuple(val_curve), tuple(loss_curve), steps,
                      time.perf_counter() - start, str(device), message, val_loss=val_loss)
