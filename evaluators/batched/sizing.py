"""How many members train in one batch: a memory budget divided by an estimate of one member's footprint."""
from __future__ import annotations

import math
import os

import torch
from torch import nn

MAX_GROUP = 128          # past this the step is compute-bound: more members per batch save no time per member
BUDGET_FRACTION = 0.5    # of the memory available to this process's share (see memory_budget)
PARAM_COPIES = 5         # weights, gradients, two optimizer states (Adam) and the copy made when members are dropped
ACTIVATION_COPIES = 6    # a layer's output, its gradient, and the rule's temporaries of that size
FLOAT_BYTES = 4


def memory_budget(device: str) -> int:
    """Bytes a batch may use: a fraction of free GPU memory on CUDA; on CPU, of the available RAM divided by the
    number of cores, since a search runs one worker process per core and each may hold a batch at once."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free * BUDGET_FRACTION)
    try:
        import psutil
        available = psutil.virtual_memory().available
    except ImportError:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(available * BUDGET_FRACTION / (os.cpu_count() or 1))


@torch.no_grad()
def member_bytes(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, train_bytes: int) -> int:
    """An estimate of one member's memory: its parameters with their gradients and optimizer state, the outputs of
    every layer for one training batch with their gradients, and its shuffled copy of the training set
    (``train_bytes``; ``batches`` gathers one per epoch)."""
    params = sum(p.numel() for p in model.parameters())
    per_sample = [0]

    def count(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        per_sample[0] += out.numel()
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was = model.training
    model.eval()   # one sample: batch norm would refuse to normalise it in train mode
    try:
        model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return FLOAT_BYTES * (PARAM_COPIES * params + ACTIVATION_COPIES * batch_size * per_sample[0]) + train_bytes


def group_sizes(n: int, per_member: int, budget: int, cap: int = MAX_GROUP) -> list[int]:
    """Split ``n`` members into as few groups as the budget allows, of near-equal sizes (so no group is a small
    remainder); each group's ``size * per_member`` stays within ``budget`` unless one member alone exceeds it."""
    if n <= 0:
        return []
    k = max(1, min(cap, budget // max(1, per_member), n))
    groups = math.ceil(n / k)
    base, extra = divmod(n, groups)
    return [base + 1] * extra + [base] * (groups - extra)
