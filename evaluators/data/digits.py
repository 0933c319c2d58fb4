"""The scikit-learn digits: 1,797 8x8 greyscale digits, 10 classes, bundled with scikit-learn (no download).

Split by a seeded permutation into 1,078 train / 359 validation / 360 test (60/20/20, not stratified).
"""

from __future__ import annotations

import numpy as np
import torch

from .splits import Split, Splits, split_indices

__all__ = ["load_digits"]


def load_digits(*, seed: int = 0, root: str | None = None) -> Splits:
    """Digits as flat float32 vectors of 64 pixels in [0, 1]; `seed` fixes the split, `root` is unused."""
    from sklearn.datasets import load_digits as _sklearn_digits  # lazy: sklearn is slow to import

    bunch = _sklearn_digits()
    # Pixel values are integers 0..16; dividing by 16 maps them exactly onto [0, 1].
    x = torch.from_numpy((bunch.data / 16.0).astype(np.float32))
    y = torch.from_numpy(bunch.target.astype(np.int64))
    n = len(y)
    n_train, n_val = round(0.6 * n), round(0.2 * n)  # 1,078 and 359
    n_test = n - n_train - n_val  # 360: the test split takes the rounding remainder
    train, val, test = split_indices(n, n_val, n_test, seed)
    return Splits(
        name="digits",
        train=Split(x[train], y[train]),
        val=Split(x[val], y[val]),
        test=Split(x[test], y[test]),
        num_classes=10,
        input_shape=(64,),
    )
