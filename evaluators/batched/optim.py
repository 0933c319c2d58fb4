"""Optimizers over stacked parameters with each member's own settings: SGD (plain or momentum) and Adam.

The update is ``torch.optim``'s (``LeanSGD`` / ``torch.optim.Adam``, dampening 0, no Nesterov, coupled weight decay)
with the learning rate, momentum and weight decay as per-member vectors broadcast over the member axis. A batch
holds one family: plain SGD is momentum SGD with momentum 0, whose buffer then equals the gradient.
"""
from __future__ import annotations

import torch
from torch import Tensor

from evaluators.task import TaskSpec

BETAS, ADAM_EPS = (0.9, 0.999), 1e-8   # torch.optim.Adam's defaults, as make_optimizer uses them


def family(task: TaskSpec) -> str:
    return "adam" if task.optimizer == "adam" else "sgd"


class StackedOptimizer:
    """Per-member hyperparameters as (K,) vectors; ``select`` keeps some members' state."""

    def __init__(self, params: list[Tensor], tasks: list[TaskSpec]) -> None:
        self.params = params
        device = params[0].device
        self.vector = lambda values: torch.tensor(values, dtype=params[0].dtype, device=device)  # noqa: E731
        self.lr = self.vector([t.lr for t in tasks])
        self.weight_decay = self.vector([t.weight_decay for t in tasks])
        self.decays = any(t.weight_decay for t in tasks)
        self.state: list[list[Tensor | None]] = []   # per parameter: its state tensors

    def set_lr(self, lrs: list[float]) -> None:
        self.lr = self.vector(lrs)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def select(self, params: list[Tensor], keep: list[int]) -> None:
        index = torch.tensor(keep, dtype=torch.long, device=params[0].device)
        self.params = params
        for name in self._vectors():
            setattr(self, name, getattr(self, name).index_select(0, index))
        self.state = [[None if s is None else s.index_select(0, index) for s in states] for states in self.state]

    def _vectors(self) -> tuple[str, ...]:
        return ("lr", "weight_decay")

    @staticmethod
    def per_member(v: Tensor, p: Tensor) -> Tensor:
        return v.view(-1, *(1,) * (p.dim() - 1))

    def _grad(self, p: Tensor) -> Tensor:
        if self.decays:
            return p.grad.add(p * self.per_member(self.weight_decay, p))
        return p.grad


class StackedSGD(StackedOptimizer):
    def __init__(self, params: list[Tensor], tasks: list[TaskSpec]) -> None:
        super().__init__(params, tasks)
        self.momentum = self.vector([t.momentum if t.optimizer == "momentum" else 0.0 for t in tasks])
        self.uses_momentum = any(t.optimizer == "momentum" for t in tasks)
        self.state = [[None] for _ in params]

    def _vectors(self) -> tuple[str, ...]:
        return ("lr", "weight_decay", "momentum")

    @torch.no_grad()
    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            if p.grad is None:   # not reached by the loss: unchanged, as in torch.optim
                continue
            d = self._grad(p)
            if self.uses_momentum:
                if state[0] is None:
                    state[0] = d.clone()
                else:
                    state[0].mul_(self.per_member(self.momentum, p)).add_(d)
                d = state[0]
            p.addcmul_(self.per_member(self.lr, p), d, value=-1.0)   # one pass over p: no lr * d temporary


class StackedAdam(StackedOptimizer):
    def __init__(self, params: list[Tensor], tasks: list[TaskSpec]) -> None:
        super().__init__(params, tasks)
        self.state = [[torch.zeros_like(p), torch.zeros_like(p)] for p in params]
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = BETAS
        correction1 = 1 - beta1 ** self.steps
        correction2_sqrt = (1 - beta2 ** self.steps) ** 0.5
        for p, (avg, avg_sq) in zip(self.params, self.state):
            if p.grad is None:
                continue
            grad = self._grad(p)
            avg.lerp_(grad, 1 - beta1)
            avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (avg_sq.sqrt() / correction2_sqrt).add_(ADAM_EPS)
            p.sub_(self.per_member(self.lr / correction1, p) * avg / denom)


def make_optimizer(params: list[Tensor], tasks: list[TaskSpec]) -> StackedOptimizer:
    """The optimizer for a batch of one family (``family``) over its stacked ``params``."""
    return (StackedAdam if family(tasks[0]) == "adam" else StackedSGD)(params, tasks)
