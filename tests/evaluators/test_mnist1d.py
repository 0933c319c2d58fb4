"""mnist1d: generated locally and never downloaded, cached atomically under the cache folder, split 3,000 / 1,000 /
1,000 with the package's own test set kept as test, and trainable by the MLP."""
from __future__ import annotations

import random
import socket
from pathlib import Path

import mnist1d.data
import numpy as np
import pytest
import torch

from evaluators import TaskSpec, evaluate, load
from evaluators.data.mnist1d import cache_dir
from primitives import SEEDS


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GP_BACKPROP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def generations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of mnist1d's generator (one entry per call)."""
    calls: list[int] = []
    real = mnist1d.data.make_dataset

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mnist1d.data, "make_dataset", counting)
    return calls


def test_generating_it_touches_no_network(empty_cache: Path, generations: list[int],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, address):
        raise AssertionError(f"mnist1d tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    s = load("mnist1d", seed=0)
    assert generations == [1] and len(s.train) == 3000


def test_second_load_is_a_cache_hit_with_identical_arrays(empty_cache: Path, generations: list[int]) -> None:
    first = load("mnist1d", seed=0)
    files = list(empty_cache.iterdir())
    assert generations == [1] and len(files) == 1 and files[0].name.startswith("mnist1d-")
    again = load("mnist1d", seed=0)
    assert generations == [1]                                   # read back, not generated again
    for a, b in [(first.train, again.train), (first.val, again.val), (first.test, again.test)]:
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_a_damaged_cache_file_is_generated_again_and_replaced(empty_cache: Path, generations: list[int]) -> None:
    good = load("mnist1d", seed=0)
    (path,) = empty_cache.iterdir()
    path.write_bytes(path.read_bytes()[:1000])                  # as if a writer had died half-way
    again = load("mnist1d", seed=0)
    assert generations == [1, 1] and torch.equal(again.train.x, good.train.x)
    assert [p.name for p in empty_cache.iterdir()] == [path.name]  # no temporary file left behind


def test_the_cache_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GP_BACKPROP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "gp-backprop"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "gp-backprop"
    monkeypatch.setenv("GP_BACKPROP_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_it_is_the_package_data_split_by_seed() -> None:
    data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    s, other = load("mnist1d", seed=0), load("mnist1d", seed=1)
    assert (len(s.train), len(s.val), len(s.test)) == (3000, 1000, 1000)
    assert s.input_shape == (40,) and s.num_classes == 10 and s.train.x.dtype == torch.float32
    # The package's test set is the test set; its 4,000 training examples are train + val, each exactly once.
    assert torch.equal(s.test.x, torch.from_numpy(data["x_test"].astype(np.float32)))
    assert torch.equal(s.test.y, torch.from_numpy(data["y_test"]))
    rows = lambda x: sorted(map(tuple, x.tolist()))  # noqa: E731
    assert rows(torch.cat([s.train.x, s.val.x])) == rows(torch.from_numpy(data["x"].astype(np.float32)))
    assert not torch.equal(s.val.x, other.val.x)                 # another seed, another validation set
    assert abs(float(s.train.x.mean())) < 0.05 and abs(float(s.train.x.std()) - 1) < 0.05  # as generated: unit scale


def test_generating_leaves_the_callers_random_generators_alone(empty_cache: Path) -> None:
    random.seed(3), np.random.seed(3)
    expected = random.random(), np.random.rand()
    random.seed(3), np.random.seed(3)
    load("mnist1d", seed=0)                                     # generates: make_dataset seeds both globally
    assert (random.random(), np.random.rand()) == expected


def test_the_mlp_learns_it_with_backprop() -> None:
    r = evaluate(SEEDS["backprop"], TaskSpec(dataset="mnist1d", epochs=2).with_(model_widths=(100, 100)))
    assert r.status == "ok", r.message
    assert r.val_acc > 0.2 and 0.0 < r.test_acc <= 1.0          # 10 classes: chance is 0.1
