"""Train/validation/test splits held as tensors, and the on-device batch iterator that feeds training.

The iterator does the CIFAR-10 augmentation of SGDR (Loshchilov & Hutter 2017, sec. 4.1): pad 4, random 32x32 crop,
random horizontal flip, vectorised over the batch and driven by an explicit generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DataError", "Normalize", "Split", "Splits", "batch_preparer", "batches", "split_indices"]

# Zero padding on each side before the random crop, as in SGDR's CIFAR-10 recipe.
PAD = 4


class DataError(ValueError):
    """A dataset cannot be built from what the user gave (name, folder, files); the message says the fix."""


@dataclass(frozen=True)
class Normalize:
    """Per-channel mean and std, applied to float batches on the fly (x - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


# eq=False: tensors don't compare to a single bool, and identity is what training code needs anyway.
@dataclass(frozen=True, eq=False)
class Split:
    """Inputs `x` (N x per-sample shape; float32, or uint8 images scaled later) and int64 labels `y` (N,)."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        # Checked once here so a new dataset builder fails at load time, not deep inside a training step.
        if self.y.dtype != torch.int64 or self.y.dim() != 1:
            raise DataError(f"labels must be a 1-D int64 tensor, got {self.y.dtype} of shape {tuple(self.y.shape)}")
        if len(self.x) != len(self.y):
            raise DataError(f"{len(self.x)} inputs but {len(self.y)} labels")
        if self.x.device != self.y.device:
            raise DataError(f"inputs on {self.x.device} but labels on {self.y.device}")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        # Shapes, not contents: the default repr would print 150 MB of CIFAR-10 pixels.
        dtype = str(self.x.dtype).removeprefix("torch.")
        return f"Split(x={dtype}{list(self.x.shape)}, y=int64[{len(self.y)}], device={self.x.device})"

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> Split:
        """A copy on `device` (or self if already there)."""
        if self.x.device == torch.device(device):
            return self
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True, eq=False)
class Splits:
    """One dataset, split three ways, with what a model builder and the training loop need to know about it."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]  # per sample, e.g. (64,) or (3, 32, 32)
    augment: bool = False  # True: training batches get pad-crop-flip (images only)
    normalize: Normalize | None = None  # applied per batch by `batches`, after uint8 -> [0, 1]

    def __repr__(self) -> str:
        return (
            f"Splits({self.name!r}, train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
            f"num_classes={self.num_classes}, input_shape={self.input_shape}, augment={self.augment}, "
            f"device={self.train.device})"
        )

    def to(self, device: torch.device | str) -> Splits:
        """Move all three splits to `device` once, so training never copies data per step."""
        return Splits(
            self.name,
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.num_classes,
            self.input_shape,
            self.augment,
            self.normalize,
        )


def split_indices(n: int, n_val: int, n_test: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Disjoint (train, val, test) index tensors covering range(n), from a permutation seeded by `seed`.

    The split seed is separate from training seeds: the same `seed` gives the same split on every machine.
    """
    if n_val < 0 or n_test < 0 or n_val + n_test >= n:
        raise DataError(f"cannot split {n} samples into {n_val} validation and {n_test} test and a non-empty train")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val + n_test :], perm[:n_val], perm[n_val : n_val + n_test]


def batches(
    split: Split,
    batch_size: int,
    *,
    generator: torch.Generator | None,
    shuffle: bool,
    augment: bool = False,
    normalize: Normalize | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (x, y) batches of one epoch over `split`, on the split's device; float32 inputs, int64 labels.

    The last batch is kept even when it is smaller than `batch_size` (drop_last=False), so every sample is seen once
    per epoch. `generator` must live on the split's device (a CPU generator for CPU data); it drives the shuffle and
    the augmentation, so the same generator state gives the same batches. uint8 inputs are scaled to [0, 1] per batch
    and then normalised by `normalize`, keeping the stored data small (CIFAR-10 as uint8 is 4x smaller than float).
    """
    # Checked here, not inside the generator below, so a bad call fails where it is made rather than at first use.
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    if augment and split.x.dim() != 4:
        raise DataError(f"augment needs N x C x H x W images, got inputs of shape {tuple(split.x.shape)}")
    if generator is not None and generator.device.type != split.device.type:
        raise DataError(f"the generator is on {generator.device} but the data on {split.device}; create it there")
    return _epoch(split, batch_size, generator, shuffle, augment, normalize)


def _epoch(
    split: Split,
    batch_size: int,
    generator: torch.Generator | None,
    shuffle: bool,
    augment: bool,
    normalize: Normalize | None,
) -> Iterator[tuple[Tensor, Tensor]]:
    x, y = split.x, split.y
    n, device = len(y), x.device
    prepare = batch_preparer(x, normalize)
    if shuffle:
        # One gather per epoch, then every batch is a view: per-batch fancy indexing would cost a few percent of a
        # digits MLP step (benchmarks/README.md). The batches are the same ones either way.
        order = torch.randperm(n, generator=generator, device=device)
        x, y = x.index_select(0, order), y.index_select(0, order)
    for start in range(0, n, batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        if augment:
            xb = _pad_crop_flip(xb, generator)
        yield prepare(xb), yb


def batch_preparer(x: Tensor, normalize: Normalize | None) -> Callable[[Tensor], Tensor]:
    """The function that turns a batch of `x`'s rows into training inputs: float32 (uint8 scaled to [0, 1]), then
    normalised. `batches` applies it to every batch; the batched evaluator to its gathered member batches."""
    # Built once per epoch, not per batch; shaped to broadcast over (B, C, H, W) or (B, features).
    mean = std = None
    if normalize is not None:
        view = (1, -1) + (1,) * (x.dim() - 2)
        mean = torch.tensor(normalize.mean, dtype=torch.float32, device=x.device).view(view)
        std = torch.tensor(normalize.std, dtype=torch.float32, device=x.device).view(view)

    def prepare(xb: Tensor) -> Tensor:
        if xb.dtype == torch.uint8:
            xb = xb.float().div_(255)
        elif xb.dtype != torch.float32:
            xb = xb.float()
        if mean is not None:
            xb = (xb - mean) / std
        return xb
    return prepare


def _pad_crop_flip(xb: Tensor, generator: torch.Generator | None) -> Tensor:
    """Zero-pad by PAD, take a random HxW crop and flip left-right with probability 1/2, per sample, in one gather."""
    b, c, h, w = xb.shape
    device = xb.device
    padded = torch.nn.functional.pad(xb, (PAD, PAD, PAD, PAD))  # zeros, like torchvision's RandomCrop(padding=4)
    top = torch.randint(0, 2 * PAD + 1, (b, 1), generator=generator, device=device)
    left = torch.randint(0, 2 * PAD + 1, (b, 1), generator=generator, device=device)
    flip = torch.rand((b, 1), generator=generator, device=device) < 0.5
    rows = top + torch.arange(h, device=device)  # (b, h)
    ar = torch.arange(w, device=device)
    # Flipping is just reading the crop's columns in reverse, so it folds into the same index grid.
    cols = left + torch.where(flip, w - 1 - ar, ar)  # (b, w)
    bi = torch.arange(b, device=device).view(b, 1, 1, 1)
    ci = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[bi, ci, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]
