"""The training loop of ``evaluators.train`` for K merged members: one step trains them all, each on its own batch.

Each member keeps what ``train`` gives a run: its batch-order generator (seeded by its task's seed, so its batches
and augmentations are ``evaluate``'s), its learning rate and schedule, its hurdle, curves and step count. A member
whose rule raises, whose loss is not finite or rises past its task's divergence factors, whose weights are not
finite after an epoch or that misses its hurdle ends with ``train``'s status and message, and is dropped from the batch (its rows, weights and optimizer state),
so it costs nothing more and the others train on as before.
"""
from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from evaluators.batched.batches import MemberBatches
from evaluators.batched.link import BatchedLink
from evaluators.batched.model import BatchedModel
from evaluators.batched.optim import make_optimizer
from evaluators.data import Split, Splits, batches
from evaluators.optim import lr_factor
from evaluators.task import EvalResult, TaskSpec
from evaluators.train import missed_hurdle, rising, start_loss

EVAL_ROWS = 1024   # rows per evaluation forward, all members together: train.accuracy's batch for one member


@dataclass
class _Run:
    """One member's progress."""

    index: int
    task: TaskSpec
    generator: torch.Generator
    val_curve: list[float] = field(default_factory=list)
    loss_curve: list[float] = field(default_factory=list)
    total: float = 0.0
    count: int = 0
    time: float = 0.0   # its share of the batch's time: each step's time split among the members it trained
    val_loss: float = 0.0
    start: float = 0.0  # where its loss started (train.start_loss), its divergence factors' base


@torch.no_grad()
def accuracies(model: BatchedModel, split: Split, splits: Splits) -> list[float]:
    """Each member's accuracy on ``split`` (every member sees every sample; eval mode, as ``train.accuracy``)."""
    return accuracies_and_losses(model, split, splits)[0]


@torch.no_grad()
def accuracies_and_losses(model: BatchedModel, split: Split, splits: Splits) -> tuple[list[float], list[float]]:
    """Each member's accuracy and mean cross-entropy on ``split``."""
    k = model.k
    model.eval()
    correct = torch.zeros(k, dtype=torch.int64, device=split.device)
    # Per-sample losses, summed once at the end: a sum per chunk would round differently for different K (the
    # chunk size depends on K), and a member's result must not depend on its batch.
    losses = torch.empty(k, len(split), device=split.device)
    start = 0
    for x, y in batches(split, max(1, EVAL_ROWS // k), generator=None, shuffle=False, normalize=splits.normalize):
        logits = model(x.repeat(k, *(1,) * (x.dim() - 1))).view(k, len(y), -1)
        correct += (logits.argmax(2) == y).sum(1)
        # Classes on the last axis: each sample's loss is then computed alone. With classes in the middle (the
        # training step's faster layout) the kernel vectorises across samples and rounds the last few of each chunk
        # differently, and the chunk's length depends on K: a member's loss would depend on its batch.
        losses[:, start:start + len(y)] = F.cross_entropy(logits.reshape(-1, logits.shape[2]), y.repeat(k),
                                                          reduction="none").view(k, -1)
        start += len(y)
    model.train()
    n = max(1, len(split))
    return [c / n for c in correct.tolist()], [v / n for v in losses.sum(1).tolist()]


class BatchTrainer:
    """Trains the members of one ``BatchedModel``; ``run()`` returns one ``EvalResult`` per member, in order, and
    ``on_result(index, result)`` hears of each member as soon as it ends (a fault then loses only the others)."""

    def __init__(self, model: BatchedModel, tasks: list[TaskSpec], splits: Splits,
                 on_result: Callable[[int, EvalResult], None] | None = None) -> None:
        first = tasks[0]
        self.model, self.splits, self.device = model, splits, splits.train.device
        self.on_result = on_result
        self.results: dict[int, EvalResult] = {}   # member index -> its result, made once, as the member ends
        self.runs = [_Run(j, t, torch.Generator(device=self.device).manual_seed(t.seed)) for j, t in enumerate(tasks)]
        self.opt = make_optimizer(list(model.parameters()), tasks)
        self.per_epoch = math.ceil(len(splits.train) / first.batch_size)
        if first.max_train_batches:
            self.per_epoch = min(self.per_epoch, first.max_train_batches)
        self.scheduled = any(t.schedule != "constant" for t in tasks)
        self.epochs, self.batch_size, self.steps = first.epochs, first.batch_size, 0
        self.iters: list = []                      # augmented data: one batch iterator per member
        self.gathered: MemberBatches | None = None  # otherwise: all members' batches gathered at once
        self.done: list[tuple[_Run, str, str, float, int]] = []   # ended members: run, status, message, test, steps

    def run(self) -> list[EvalResult]:
        self.model.train()
        try:
            for epoch in range(1, self.epochs + 1):
                if not self.runs:
                    break
                self._epoch(epoch)
                if self.runs:
                    self._timed(self._after_epoch, epoch)
            if self.runs:
                self._timed(self._finish)
        finally:
            for module in self.model.modules():
                if isinstance(module, BatchedLink):
                    module.release()
        return [self.results[j] for j in sorted(self.results)]

    def _timed(self, fn, *args) -> None:
        """Run ``fn`` and add its time to the members that were in the batch, in equal shares."""
        members, start = list(self.runs), time.perf_counter()
        fn(*args)
        for r in members:
            r.time += (time.perf_counter() - start) / len(members)
        for outcome in self.done[len(self.results):]:   # after the time shares: a result made is final
            result = self.results[outcome[0].index] = self._result(*outcome)
            if self.on_result is not None:
                self.on_result(outcome[0].index, result)

    def _finish(self) -> None:
        tests = accuracies(self.model, self.splits.test, self.splits)
        self._end({j: ("ok", "", tests[j]) for j in range(len(self.runs))})

    def _epoch(self, epoch: int) -> None:
        s = self.splits
        if s.augment:   # the generators also draw per batch: one iterator per member, as train draws them
            self.iters = [batches(s.train, self.batch_size, generator=r.generator, shuffle=True, augment=True,
                                  normalize=s.normalize) for r in self.runs]
        else:
            self.gathered = MemberBatches(s.train, self.batch_size, [r.generator for r in self.runs], s.normalize)
        for r in self.runs:
            r.total, r.count = 0.0, 0
        for i in itertools.count():
            pair = self._draw(i)
            if pair is None or i == self.per_epoch:
                break
            self._timed(self._step, pair, epoch)
            if not self.runs:
                return

    def _draw(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Batch i of every member, member-major, or None after the epoch's last."""
        if self.iters:
            pairs = [next(it, None) for it in self.iters]   # like train's enumerate: batch per_epoch is drawn too
            return None if pairs[0] is None else (torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))
        return self.gathered.batch(i) if i < self.gathered.count else None

    def _step(self, pair: tuple[torch.Tensor, torch.Tensor], epoch: int) -> None:
        model, opt = self.model, self.opt
        x, y = pair
        k = model.k
        # Classes on the middle axis: CPU log_softmax over a short last axis (10 classes) is ~4x slower.
        losses = F.cross_entropy(model(x).view(k, len(y) // k, -1).transpose(1, 2), y.view(k, -1),
                                 reduction="none").mean(1)
        opt.zero_grad()
        losses.sum().backward()
        values = losses.tolist()   # the step's one sync, as in train
        ended = {j: ("error", message, 0.0) for j, message in model.state.failed.items()}
        model.state.failed.clear()
        for j, (r, value) in enumerate(zip(self.runs, values)):
            if j in ended:
                continue
            if not math.isfinite(value):
                ended[j] = ("diverged", f"non-finite loss at epoch {epoch}, step {self.steps + 1}", 0.0)
                continue
            if self.steps == 0:
                r.start = start_loss(value, self.splits.num_classes)
            if why := rising(r.task.diverge_step, r.start, value, f"step {self.steps + 1}'s"):
                ended[j] = ("diverged", why, 0.0)
        self._end(ended)
        if not self.runs:
            return
        values = [v for j, v in enumerate(values) if j not in ended]
        if self.scheduled:
            opt.set_lr([r.task.lr * lr_factor(r.task, self.steps, self.per_epoch) for r in self.runs])
        opt.step()
        for r, value in zip(self.runs, values):
            r.total += value
            r.count += 1
        self.steps += 1

    def _after_epoch(self, epoch: int) -> None:
        for r in self.runs:
            r.loss_curve.append(r.total / max(1, r.count))
        finite = torch.ones(self.model.k, dtype=torch.bool, device=self.device)
        for p in self.model.parameters():
            finite &= torch.isfinite(p.detach()).flatten(1).all(1)
        ended = {j: ("diverged", f"non-finite weights after epoch {epoch}", 0.0)
                 for j, ok in enumerate(finite.tolist()) if not ok}
        for j, r in enumerate(self.runs):
            if j not in ended and (why := rising(r.task.diverge_epoch, r.start, r.loss_curve[-1],
                                                 f"epoch {epoch}'s mean")):
                ended[j] = ("diverged", why, 0.0)
        self._end(ended)
        if not self.runs:
            return
        accs, losses = accuracies_and_losses(self.model, self.splits.val, self.splits)
        for r, acc, loss in zip(self.runs, accs, losses):
            r.val_curve.append(acc)
            r.val_loss = loss
        chance = 1.0 / self.splits.num_classes
        missed = {j: why for j, r in enumerate(self.runs)
                  if (why := missed_hurdle(r.task, epoch, r.val_curve[-1], chance))}
        if missed:
            tests = accuracies(self.model, self.splits.test, self.splits)
            self._end({j: ("hurdle", why, tests[j]) for j, why in missed.items()})

    def _end(self, ended: dict[int, tuple[str, str, float]]) -> None:
        """Record the results of the members at row blocks ``ended`` and drop them from the batch."""
        if not ended:
            return
        self.done += [(self.runs[j], status, message, test, self.steps) for j, (status, message, test) in ended.items()]
        keep = [j for j in range(len(self.runs)) if j not in ended]
        self.runs = [self.runs[j] for j in keep]
        self.iters = [self.iters[j] for j in keep] if self.iters else []
        if keep and self.gathered is not None:
            self.gathered.select(torch.tensor(keep, dtype=torch.long, device=self.device))
        if keep:
            self.model.select(keep)
            self.opt.select(list(self.model.parameters()), keep)

    def _result(self, r: _Run, status: str, message: str, test: float, steps: int) -> EvalResult:
        if status == "error":
            return EvalResult("error", device=r.task.device, wall_time=r.time, message=message)
        val = r.val_curve[-1] if r.val_curve and status != "diverged" else 0.0
        return EvalResult(status, val, test, tuple(r.val_curve), tuple(r.loss_curve), steps, r.time,
                          str(self.device), message, val_loss=r.val_loss if status != "diverged" else 0.0)
