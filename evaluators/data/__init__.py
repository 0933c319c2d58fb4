"""The datasets a candidate rule is trained on, by name: `load("digits" | "synthetic" | "cifar10", seed=, root=)`."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from .cifar10 import load_cifar10
from .digits import load_digits
from .splits import DataError, Normalize, Split, Splits, batches
from .synthetic import load_synthetic

__all__ = ["DATASETS", "DataError", "Normalize", "Split", "Splits", "batches", "load"]

# name -> loader(*, seed, root) -> Splits. A new dataset is one file in this package and one line here.
DATASETS: dict[str, Callable[..., Splits]] = {
    "digits": load_digits,
    "synthetic": load_synthetic,
    "cifar10": load_cifar10,
}


def load(name: str, *, seed: int = 0, root: str | None = None) -> Splits:
    """Load dataset `name` on the CPU; `seed` fixes the train/val/test split, `root` is the data folder (cifar10).

    Call `.to(device)` on the result once before training.
    """
    loader = DATASETS.get(name)
    if loader is None:
        close = difflib.get_close_matches(str(name), DATASETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}{hint}")
    return loader(seed=seed, root=root)
