"""MNIST-1D (Greydanus 2020): 10 classes of 1-D signals of 40 points, generated locally by the `mnist1d` package.

Its default arguments give 4,000 train and 1,000 test examples. The test set stays the test set; the 4,000 are split
by `seed` into 3,000 train and 1,000 validation. Never downloads: `mnist1d.data.get_dataset` fetches a pickle from
GitHub by default, so we call its generator `make_dataset` and cache the arrays under the user's cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .splits import DataError, Split, Splits, split_indices

__all__ = ["N_VAL", "cache_dir", "load_mnist1d"]

N_VAL = 1000  # a validation example is worth 0.1 points of accuracy
_ARRAYS = ("x", "y", "x_test", "y_test")
# The download address names no property of the data, so it stays out of the cache key.
_NOT_GENERATION = ("url",)


def cache_dir() -> Path:
    """`$GP_BACKPROP_CACHE`, else `$XDG_CACHE_HOME/gp-backprop`, else `~/.cache/gp-backprop`."""
    if os.environ.get("GP_BACKPROP_CACHE"):
        return Path(os.environ["GP_BACKPROP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gp-backprop"


def load_mnist1d(*, seed: int = 0, root: str | None = None) -> Splits:
    """MNIST-1D as float32 vectors of 40 points, 3,000 / 1,000 / 1,000; `seed` fixes the train/val split.

    The signals are used as generated: `make_dataset` already centres them and scales them to unit variance
    (over the whole set, as the MNIST-1D paper trains on them). `root` is unused (the cache folder is `cache_dir()`).
    """
    arrays = _cached_arrays()
    x = torch.from_numpy(arrays["x"].astype(np.float32))
    y = torch.from_numpy(arrays["y"].astype(np.int64))
    train, val, _ = split_indices(len(y), N_VAL, 0, seed)
    return Splits(
        name="mnist1d",
        train=Split(x[train], y[train]),
        val=Split(x[val], y[val]),
        test=Split(torch.from_numpy(arrays["x_test"].astype(np.float32)),
                   torch.from_numpy(arrays["y_test"].astype(np.int64))),
        num_classes=10,
        input_shape=(x.shape[1],),
    )


def _generation_args() -> dict[str, Any]:
    from mnist1d.data import get_dataset_args  # lazy: importing mnist1d imports matplotlib (~0.6 s)

    return {k: v for k, v in get_dataset_args(as_dict=True).items() if k not in _NOT_GENERATION}


def _cached_arrays() -> dict[str, np.ndarray]:
    args = _generation_args()
    from importlib.metadata import version

    # The package version is in the key too: the same arguments through a changed generator are other data.
    text = json.dumps({"args": args, "mnist1d": version("mnist1d")}, sort_keys=True)
    path = cache_dir() / f"mnist1d-{hashlib.sha256(text.encode()).hexdigest()[:16]}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in _ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # not there yet, or truncated or foreign: generate it and (re)place it
    arrays = _generate(args)
    _write_atomically(path, arrays)
    return arrays


def _generate(args: dict[str, Any]) -> dict[str, np.ndarray]:
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    # make_dataset seeds Python's and NumPy's global generators; give the caller's back untouched.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(ObjectView(dict(args)))
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.ascontiguousarray(data[k]) for k in _ARRAYS}


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write the mnist1d cache in {path.parent} ({exc.strerror}); "
                        "set GP_BACKPROP_CACHE to a writable folder") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
