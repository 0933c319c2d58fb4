"""The backend interface every worker pool implements, and what crosses it: ``Done`` results and ``BackendError``.

The search keeps every worker busy by handing each one ``depth`` trainings (a chunk, which it may train as one batched
network), and takes results back as they finish (the paper's asynchronous worker pool, §3.2). Faults become statuses
in the backends: a dead worker process gives "crashed", a training past ``evaluation.timeout`` gives "timeout".
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

from evaluators.task import EvalResult, TaskSpec

__all__ = ["Done", "Backend", "BackendError", "timeout_result", "quiet_resource_tracker", "THREAD_ENV"]

# Set before torch is imported in a worker: one thread each, the pool provides the parallelism.
THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


class BackendError(RuntimeError):
    """Workers cannot be started or reached; the message says why, in one line."""


@dataclass(frozen=True)
class Done:
    """A finished candidate: its id, its result and the worker seconds it used."""

    cid: int
    result: EvalResult
    busy: float


class Backend(Protocol):
    depth: int                                         # trainings handed to each worker at once (a chunk)
    def start(self) -> None: ...                       # start and warm the workers (blocks)
    def capacity(self) -> int: ...                     # how many candidates can run at once
    def running(self) -> int: ...
    def submit(self, cid: int, text: str, task: TaskSpec | None = None) -> None: ...  # task: default the backend's
    def wait(self, timeout: float) -> list[Done]: ...  # results finished within ``timeout`` seconds (maybe none)
    def close(self) -> None: ...                       # stop everything, in-flight work included


def timeout_result(timeout: float) -> EvalResult:
    return EvalResult("timeout", message=f"no result after {timeout:g} s (evaluation.timeout); its worker was stopped")




# The resource tracker (loky's, and multiprocessing's for Dask's spawned processes) is a child process that outlives
# a controller killed with kill -9, unlinks the semaphores the controller can no longer release, and then warns
# "resource_tracker: There appear to be N leaked semlock objects" on the terminal. The cleanup is right, the warning
# only alarms. The tracker is started with the controller's interpreter flags (multiprocessing.util.
# _args_from_interpreter_flags copies sys.warnoptions into -W options), so a warning filter here reaches it; a -W
# message filter cannot hold ':', so it matches the prefix "resource_tracker".
_TRACKER_FILTER = "ignore:resource_tracker:UserWarning"


def quiet_resource_tracker() -> None:
    """Keep the resource tracker's leak warnings (after a kill -9) off the terminal; call before workers start."""
    if _TRACKER_FILTER not in sys.warnoptions:
        sys.warnoptions.append(_TRACKER_FILTER)
