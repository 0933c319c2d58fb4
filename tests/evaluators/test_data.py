"""Tests of evaluators.data: every registered dataset, the split rules, the CIFAR-10 loader and the batch iterator."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import evaluators.data.cifar10 as cifar10_module
from evaluators.data import DATASETS, DataError, Split, Splits, batches, load
from evaluators.data.cifar10 import NORMALIZE, load_cifar10
from evaluators.data.splits import split_indices
from tests.fake_cifar10 import UncheckedCIFAR10


@pytest.fixture
def fake_cifar10(fake_cifar10_root: Path) -> Splits:
    return load_cifar10(root=str(fake_cifar10_root), dataset_cls=UncheckedCIFAR10)


def _parts(s: Splits) -> tuple[Split, Split, Split]:
    return s.train, s.val, s.test


# ---- every registered dataset ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_loads_with_consistent_shapes_and_split_seed(
    name: str, fake_cifar10_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # End to end through load(): the module-level default class is read at call time.
    monkeypatch.setattr(cifar10_module, "CIFAR10_CLASS", UncheckedCIFAR10)
    s = load(name, seed=0, root=str(fake_cifar10_root))
    assert s.name == name
    assert s.augment == (name == "cifar10")
    for part in _parts(s):
        assert len(part) > 0
        assert part.y.dtype == torch.int64
        assert tuple(part.x.shape[1:]) == s.input_shape
        assert part.x.dtype == (torch.uint8 if name == "cifar10" else torch.float32)
        assert 0 <= int(part.y.min()) and int(part.y.max()) < s.num_classes
    again, other = load(name, seed=0, root=str(fake_cifar10_root)), load(name, seed=1, root=str(fake_cifar10_root))
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(_parts(s), _parts(again)))
    assert not torch.equal(s.train.x, other.train.x)  # a different split seed reshuffles the split
    moved = s.to("cpu")
    assert moved.num_classes == s.num_classes and torch.equal(moved.train.x, s.train.x)


def test_unknown_dataset_name_suggests_the_closest() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'digit'.*cifar10, digits, mnist1d, synthetic.*did you mean 'digits'"):
        load("digit")
    with pytest.raises(DataError) as info:
        load("imagenet")
    assert "did you mean" not in str(info.value)


# ---- splits ------------------------------------------------------------------------------------------------------


def test_digits_split_sizes_and_every_sample_in_exactly_one_split() -> None:
    from sklearn.datasets import load_digits

    s = load("digits", seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (1078, 359, 360)
    assert s.input_shape == (64,) and s.num_classes == 10
    assert float(s.train.x.min()) >= 0.0 and float(s.train.x.max()) <= 1.0
    full = load_digits()
    expected = Counter(tuple(row) + (label,) for row, label in zip((full.data / 16).astype(np.float32), full.target))
    got = Counter(
        tuple(row) + (label,) for p in _parts(s) for row, label in zip(p.x.numpy(), p.y.numpy().tolist())
    )
    assert got == expected  # a partition: nothing lost, nothing duplicated across train/val/test


def test_split_indices_are_disjoint_and_cover_everything() -> None:
    train, val, test = split_indices(50, 7, 5, seed=0)
    assert (len(train), len(val), len(test)) == (38, 7, 5)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(50))
    with pytest.raises(DataError, match="cannot split 10 samples"):
        split_indices(10, 5, 5, seed=0)


def test_synthetic_is_learnable_by_an_mlp_but_not_by_a_linear_model() -> None:
    s = load("synthetic")
    assert (len(s.train), len(s.val), len(s.test), s.num_classes) == (512, 128, 128, 4)

    def test_accuracy(model: torch.nn.Module, lr: float) -> float:
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        g = torch.Generator().manual_seed(0)
        for _ in range(20):
            for xb, yb in batches(s.train, 32, generator=g, shuffle=True):
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
        with torch.no_grad():
            return (model(s.test.x).argmax(1) == s.test.y).float().mean().item()

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    assert test_accuracy(mlp, lr=0.5) > 0.8  # chance is 0.25
    assert test_accuracy(torch.nn.Linear(8, 4), lr=0.1) < 0.4  # classes are symmetric under x -> -x


# ---- cifar10 -----------------------------------------------------------------------------------------------------


def test_cifar10_fake_loads_and_labels_round_trip(fake_cifar10_root: Path, fake_cifar10: Splits) -> None:
    s = fake_cifar10
    assert (len(s.train), len(s.val), len(s.test)) == (90, 10, 20)  # validation: 10% of the official train set
    assert s.train.x.shape == (90, 3, 32, 32) and s.train.x.dtype == torch.uint8
    folder = fake_cifar10_root / "cifar-10-batches-py"
    written: dict[bytes, int] = {}
    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "rb") as f:
            entry = pickle.load(f, encoding="bytes")  # the CIFAR page's recipe: keys come back as bytes
        assert set(entry) == {b"batch_label", b"labels", b"data", b"filenames"}
        written.update({row.tobytes(): label for row, label in zip(entry[b"data"], entry[b"labels"])})
    # Each loaded image (flattened channel-major, as on disk) carries the label written with it.
    loaded = {x.reshape(-1).numpy().tobytes(): int(y) for p in (s.train, s.val) for x, y in zip(p.x, p.y)}
    assert loaded == written
    with open(folder / "test_batch", "rb") as f:
        test = pickle.load(f, encoding="bytes")
    assert torch.equal(s.test.x.reshape(20, 3072), torch.from_numpy(test[b"data"]))  # official order kept
    assert s.test.y.tolist() == test[b"labels"]


def test_cifar10_missing_folder_says_what_to_download_and_where(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load("cifar10", root=str(tmp_path))
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and "https://www.cs.toronto.edu/~kriz/cifar.html" in message
    assert str(tmp_path / "cifar-10-batches-py") in message and "root" in message
    assert "\n" not in message
    with pytest.raises(DataError, match="set root"):
        load("cifar10")


def test_cifar10_missing_file_is_named(fake_cifar10_root: Path) -> None:
    (fake_cifar10_root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch missing"):
        load_cifar10(root=str(fake_cifar10_root), dataset_cls=UncheckedCIFAR10)


def test_cifar10_md5_check_is_on_by_default(fake_cifar10_root: Path) -> None:
    # The fake files are complete but not the official bytes: torchvision's md5 check must reject them.
    with pytest.raises(DataError, match="md5"):
        load("cifar10", root=str(fake_cifar10_root))


# ---- batch iterator ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_sample_once_including_the_last_partial_batch(shuffle: bool) -> None:
    split = Split(torch.arange(10, dtype=torch.float32)[:, None], torch.arange(10))
    out = list(batches(split, 3, generator=torch.Generator().manual_seed(0), shuffle=shuffle))
    assert [len(y) for _, y in out] == [3, 3, 3, 1]
    xs, ys = torch.cat([x for x, _ in out]).flatten(), torch.cat([y for _, y in out])
    assert sorted(ys.tolist()) == list(range(10))
    assert torch.equal(xs.long(), ys)  # inputs stay paired with their labels


def test_same_generator_seed_gives_the_same_batches_and_augmentation(fake_cifar10: Splits) -> None:
    def epoch(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(seed)
        return list(batches(fake_cifar10.train, 32, generator=g, shuffle=True, augment=True, normalize=NORMALIZE))

    a, b, c = epoch(0), epoch(0), epoch(1)
    assert [x.shape for x, _ in a] == [(32, 3, 32, 32), (32, 3, 32, 32), (26, 3, 32, 32)]
    assert all(x.dtype == torch.float32 for x, _ in a)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])


def test_augmentation_is_a_pad_crop_flip_of_the_same_sample(fake_cifar10: Splits) -> None:
    split, g = fake_cifar10.train, torch.Generator().manual_seed(0)
    raw_x, raw_y = next(batches(split, 32, generator=None, shuffle=False))
    aug_x, aug_y = next(batches(split, 32, generator=g, shuffle=False, augment=True))
    assert aug_x.shape == raw_x.shape and torch.equal(aug_y, raw_y)
    assert not torch.equal(aug_x, raw_x)
    padded = F.pad(raw_x, (4, 4, 4, 4))  # zero padding, like torchvision's RandomCrop(32, padding=4)
    flips = 0
    for i in range(len(raw_x)):
        matches = [
            flip
            for top in range(9)
            for left in range(9)
            for flip in (False, True)
            if torch.equal(aug_x[i], _crop(padded[i], top, left, flip))
        ]
        assert matches, f"sample {i} is not a crop/flip of its raw image"
        flips += matches[0]
    assert 0 < flips < len(raw_x)  # flips are per sample, not per batch


def _crop(image: torch.Tensor, top: int, left: int, flip: bool) -> torch.Tensor:
    crop = image[:, top : top + 32, left : left + 32]
    return crop.flip(-1) if flip else crop


def test_uint8_images_are_scaled_and_normalised_per_batch(fake_cifar10: Splits) -> None:
    x, _ = next(batches(fake_cifar10.test, 8, generator=None, shuffle=False, normalize=NORMALIZE))
    mean, std = torch.tensor(NORMALIZE.mean).view(1, 3, 1, 1), torch.tensor(NORMALIZE.std).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (fake_cifar10.test.x[:8].float() / 255 - mean) / std)


def test_batches_reject_bad_arguments() -> None:
    split = load("synthetic").train
    with pytest.raises(DataError, match="augment needs"):
        batches(split, 8, generator=None, shuffle=False, augment=True)  # fails at the call, before iterating
    with pytest.raises(DataError, match="batch_size"):
        batches(split, 0, generator=None, shuffle=False)
