"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_cifar10 import write_fake_cifar10


@pytest.fixture
def fake_cifar10_root(tmp_path: Path) -> Path:
    """A folder holding a tiny fake `cifar-10-batches-py/` (100 train, 20 test images) in the official layout."""
    return write_fake_cifar10(tmp_path)
