"""A small, fast, deterministic 4-class task in 8-D for tests and smoke runs: a linear model stays at chance (0.25).

Eight Gaussian blobs sit on a circle in a 2-D plane; opposite blobs share a class. Six noise dimensions are added and
the 8-D point goes through a fixed random rotation and a tanh. Every class is symmetric under x -> -x (tanh is odd),
so every linear classifier is at chance, while a small MLP separates the blobs.
"""

from __future__ import annotations

import numpy as np
import torch

from .splits import Split, Splits, split_indices

__all__ = ["load_synthetic"]

NUM_CLASSES = 4
DIM = 8
N_TRAIN, N_VAL, N_TEST = 512, 128, 128
# The task itself (blob layout, rotation, samples) is fixed, so `seed` means the same thing as for every other
# dataset: which samples go to train, validation and test.
_TASK_SEED = 1234
_BLOB_STD = 0.15  # adjacent blob centres are 0.77 apart, so the blobs barely touch
_NOISE_STD = 0.5  # the six distractor dimensions
_GAIN = 1.5  # scale before the tanh, large enough to bend the space


def load_synthetic(*, seed: int = 0, root: str | None = None) -> Splits:
    """512 train / 128 validation / 128 test samples, float32 (8,), 4 balanced classes; `root` is unused."""
    n = N_TRAIN + N_VAL + N_TEST
    rng = np.random.default_rng(_TASK_SEED)  # numpy's PCG64 streams are stable across versions
    blob = np.arange(n) % (2 * NUM_CLASSES)  # 96 samples per blob, 192 per class
    angle = 2 * np.pi * blob / (2 * NUM_CLASSES)
    z = rng.normal(0.0, _NOISE_STD, size=(n, DIM))
    z[:, 0] = np.cos(angle) + rng.normal(0.0, _BLOB_STD, n)
    z[:, 1] = np.sin(angle) + rng.normal(0.0, _BLOB_STD, n)
    rotation, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    x = torch.from_numpy(np.tanh(_GAIN * z @ rotation).astype(np.float32))
    y = torch.from_numpy((blob % NUM_CLASSES).astype(np.int64))  # blobs k and k + 4 are opposite: same class
    train, val, test = split_indices(n, N_VAL, N_TEST, seed)
    return Splits(
        name="synthetic",
        train=Split(x[train], y[train]),
        val=Split(x[val], y[val]),
        test=Split(x[test], y[test]),
        num_classes=NUM_CLASSES,
        input_shape=(DIM,),
    )
