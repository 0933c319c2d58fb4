"""A tiny fake CIFAR-10 written in the official on-disk pickle layout, and a torchvision class that skips the md5 check.

The official files were pickled by Python 2: their dict keys and strings are Python 2 `str`, which read back as
`bytes` with `pickle.load(f, encoding="bytes")` (the recipe on the CIFAR page) and as `str` with `encoding="latin1"`
(what torchvision uses). We write the same opcodes so both readers see what they would see on the real files.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
from torchvision.datasets import CIFAR10

__all__ = ["LABEL_NAMES", "UncheckedCIFAR10", "write_fake_cifar10"]

LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _Py2Str(bytes):
    """A Python 2 `str`: pickled with the (SHORT_)BINSTRING opcodes rather than as Python 3 bytes or str."""


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler: the C one has no per-type dispatch to extend
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2str(self, obj: _Py2Str) -> None:
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2str


def _s(text: str) -> _Py2Str:
    return _Py2Str(text.encode("latin1"))


def _dump(path: Path, obj: Any) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _batch(label: str, data: np.ndarray, labels: list[int], first: int) -> dict[_Py2Str, Any]:
    return {
        _s("batch_label"): _s(label),
        _s("labels"): labels,
        _s("data"): data,  # N x 3072 uint8: 1024 red, then green, then blue, each row-major 32 x 32
        _s("filenames"): [_s(f"fake_{first + i:05d}.png") for i in range(len(labels))],
    }


def write_fake_cifar10(root: str | os.PathLike[str], *, n_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """Write `<root>/cifar-10-batches-py/` (data_batch_1..5, test_batch, batches.meta) with random images; return root.

    Images are uniform random uint8 (so, with overwhelming probability, all distinct); labels cycle through all ten
    classes in a seeded order.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    parts = [(f"data_batch_{i}", f"training batch {i} of 5", n_per_batch) for i in range(1, 6)]
    parts.append(("test_batch", "testing batch 1 of 1", n_test))
    first = 0
    for filename, label, n in parts:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(n) % 10)]
        _dump(folder / filename, _batch(label, data, labels, first))
        first += n
    meta = {
        _s("num_cases_per_batch"): n_per_batch,
        _s("label_names"): [_s(name) for name in LABEL_NAMES],
        _s("num_vis"): 3072,
    }
    _dump(folder / "batches.meta", meta)
    return root


class UncheckedCIFAR10(CIFAR10):
    """torchvision's CIFAR10 without the md5 checks, which the fake files cannot pass."""

    def _check_integrity(self) -> bool:
        return True

    def _load_meta(self) -> None:
        # The parent checks batches.meta's md5 with a module-level function, not _check_integrity; read it unchecked.
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
