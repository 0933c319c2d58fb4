"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.fake_cifar10 import write_fake_cifar10

# Tests train tiny networks: one intra-op thread is faster for them and keeps two test processes on two cores from
# oversubscribing the CPU (search workers run with one thread too).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generated datasets (mnist1d) are cached in a folder of the test session, never in the user's ~/.cache;
    set in the environment, so CLI subprocesses and their workers use it too."""
    folder = tmp_path_factory.mktemp("gp-backprop-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GP_BACKPROP_CACHE", str(folder))
        yield folder


@pytest.fixture
def fake_cifar10_root(tmp_path: Path) -> Path:
    """A folder holding a tiny fake `cifar-10-batches-py/` (100 train, 20 test images) in the official layout."""
    return write_fake_cifar10(tmp_path)
