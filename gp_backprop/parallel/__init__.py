"""Where candidates train: worker pools by name (``parallel.backend``), each implementing ``base.Backend``.

A new backend is one file here and one line in ``BACKENDS``: a class taking ``(function, task, workers, timeout,
scheduler, members)`` with the ``Backend`` methods.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from evaluators.task import TaskSpec

from gp_backprop.parallel.base import THREAD_ENV, Backend, BackendError, Done, quiet_resource_tracker, timeout_result
from gp_backprop.parallel.dask import DaskBackend
from gp_backprop.parallel.loky import LokyBackend

__all__ = ["BACKENDS", "Backend", "BackendError", "DaskBackend", "Done", "LokyBackend", "THREAD_ENV", "make_backend",
           "quiet_resource_tracker", "timeout_result"]

BACKENDS: dict[str, Callable[..., Backend]] = {
    "loky": LokyBackend,   # local processes through joblib's loky
    "dask": DaskBackend,   # a Dask scheduler, or a LocalCluster on this machine
}


def make_backend(name: str, function: str, task: TaskSpec, *, workers: int = 0, timeout: float = 0.0,
                 scheduler: str = "", members: int = 1) -> Backend:
    """The backend ``name`` with ``workers`` processes (0: one per CPU core) running ``function(text, task)``, each
    worker taking chunks of ``members`` trainings (one batched network where ``function`` has a ``_many`` form)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    return BACKENDS[name](function, task, workers or os.cpu_count() or 1, timeout, scheduler, members)
