"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.fake_cifar10 import write_fake_cifar10

# Tests train tiny networks: one intra-op thread is faster for them and keeps two test processes on two cores from
# oversubscribing the CPU (search workers run with one thread too).
torch.set_num_threads(1)


@pytest.fixture
def fake_cifar10_root(tmp_path: Path) -> Path:
    """A folder holding a tiny fake `cifar-10-batches-py/` (100 train, 20 test images) in the official layout."""
    return write_fake_cifar10(tmp_path)
