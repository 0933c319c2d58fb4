"""The members' training batches of one epoch, gathered for all members at once.

Each member's order is the permutation ``data.batches`` draws from that member's generator at the start of an epoch,
so its batches are ``evaluate``'s; one ``index_select`` per step then takes every member's rows, member-major,
instead of K batch iterators and a concatenation. Augmented data draws from each generator per batch as well, so it
keeps ``data.batches``, one iterator per member.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from evaluators.data import Normalize, Split
from evaluators.data.splits import batch_preparer


class MemberBatches:
    """One epoch's batches for K members (not augmented): ``batch(i)`` is batch i of every member, member-major."""

    def __init__(self, split: Split, batch_size: int, generators: list[torch.Generator],
                 normalize: Normalize | None) -> None:
        n = len(split)
        self.split, self.batch_size = split, batch_size
        self.orders = torch.stack([torch.randperm(n, generator=g, device=split.device) for g in generators])
        self.prepare = batch_preparer(split.x, normalize)
        self.count = math.ceil(n / batch_size)

    def batch(self, i: int) -> tuple[Tensor, Tensor]:
        index = self.orders[:, i * self.batch_size:(i + 1) * self.batch_size].reshape(-1)
        return self.prepare(self.split.x.index_select(0, index)), self.split.y.index_select(0, index)

    def select(self, index: Tensor) -> None:
        """Keep the members at ``index`` (row-block positions, a long tensor)."""
        self.orders = self.orders.index_select(0, index)
