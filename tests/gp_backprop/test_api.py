"""The package's public surface: every name in ``__all__`` resolves, and importing the package stays light."""
from __future__ import annotations

import subprocess
import sys

import gp_backprop


def test_every_public_name_resolves() -> None:
    for name in gp_backprop.__all__:
        assert getattr(gp_backprop, name) is not None, name


def test_import_loads_neither_mlflow_nor_dask_nor_torch() -> None:
    code = "import sys, gp_backprop; print(sorted(m for m in ('mlflow', 'distributed', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
