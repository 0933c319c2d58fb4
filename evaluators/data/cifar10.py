"""CIFAR-10 from the official python pickles, read through torchvision (md5-checked, never downloaded here).

Kept as uint8 N x 3 x 32 x 32; `batches` scales, normalises and augments per batch. The official 50,000 training
images split into 45,000 train / 5,000 validation by a seeded permutation; the official test batch is the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .splits import DataError, Normalize, Split, Splits, split_indices

__all__ = ["CIFAR10_CLASS", "NORMALIZE", "load_cifar10"]

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
# Per-channel statistics of the CIFAR-10 training set, as used with SGDR's recipe.
NORMALIZE = Normalize(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
# The dataset class used when the caller passes none; None means torchvision's CIFAR10, imported on first use so that
# importing this package stays cheap. Read at call time, so tests can swap in a class that skips the md5 check.
CIFAR10_CLASS: type | None = None


def load_cifar10(*, seed: int = 0, root: str | None = None, dataset_cls: type | None = None) -> Splits:
    """Load `<root>/cifar-10-batches-py/`; `seed` fixes the train/validation split (validation = 10%, at least 1).

    `dataset_cls` defaults to CIFAR10_CLASS, else torchvision.datasets.CIFAR10; it is called as
    `dataset_cls(root, train=..., download=False)` and must expose `.data` (N x 32 x 32 x 3 uint8) and `.targets`.
    """
    folder = _check_files(root)
    cls = dataset_cls or CIFAR10_CLASS or _torchvision_cifar10()
    train_x, train_y = _read(cls, root, folder, train=True)
    test_x, test_y = _read(cls, root, folder, train=False)
    n = len(train_y)
    tr, val, _ = split_indices(n, max(1, n // 10), 0, seed)  # 45,000 / 5,000 on the real data
    return Splits(
        name="cifar10",
        train=Split(train_x[tr], train_y[tr]),
        val=Split(train_x[val], train_y[val]),
        test=Split(test_x, test_y),
        num_classes=10,
        input_shape=(3, 32, 32),
        augment=True,
        normalize=NORMALIZE,
    )


def _torchvision_cifar10() -> type:
    from torchvision.datasets import CIFAR10  # lazy: torchvision is only needed for this dataset

    return CIFAR10


def _check_files(root: str | None) -> Path:
    """Fail early, in one line, with what is missing and how to get it; torchvision's own message is less specific."""
    get = f"download {ARCHIVE} from {URL} and extract it"
    if root is None:
        raise DataError(
            f"cifar10 needs a data folder: set root (the --data-root option); {get} so that <root>/{FOLDER}/ exists"
        )
    folder = Path(root).expanduser() / FOLDER
    if not folder.is_dir():
        raise DataError(
            f"CIFAR-10 not found: {folder} does not exist; {get} into {root} so that {folder}/ exists, "
            f"or set root (--data-root) to the folder that holds {FOLDER}/"
        )
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 incomplete: {', '.join(missing)} missing in {folder}; {get} into {root} again")
    return folder


def _read(cls: type, root: str | None, folder: Path, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One official part (train or test) as uint8 N x 3 x 32 x 32 images and int64 labels."""
    try:
        ds: Any = cls(str(root), train=train, download=False)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted": the files exist, so md5 failed
        raise DataError(
            f"CIFAR-10 files in {folder} fail torchvision's md5 check (corrupt, partial or not the official data): "
            f"delete the folder, then download {ARCHIVE} from {URL} and extract it again"
        ) from err
    # torchvision stores HWC for PIL; models and the batch iterator want CHW. One copy at load time.
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return x, y
