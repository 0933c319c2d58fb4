"""Where candidates train: a small ``Backend`` interface over joblib's loky processes or Dask distributed.

The controller keeps every worker busy by submitting one candidate per free slot and taking results back as they
finish (the paper's asynchronous worker pool, §3.2). Faults become statuses here: a dead worker process gives
"crashed", a candidate past ``evaluation.timeout`` gives "timeout" and its worker is stopped.
"""
from __future__ import annotations

import concurrent.futures as cf
import copy
import logging
import os
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

from joblib.externals.loky import ProcessPoolExecutor
from joblib.externals.loky.process_executor import BrokenProcessPool

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.config import ParallelConfig
from gp_backprop.worker import STARTED_TOPIC, keep_loky_worker, lower_priority, run_one, run_one_on_dask, warm

__all__ = ["Done", "Backend", "LokyBackend", "DaskBackend", "make_backend", "BackendError"]

# Set before torch is imported in a worker: one thread each, the pool provides the parallelism.
_THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

# Dask's housekeeping for a LocalCluster whose workers use every core. By default the worker profiler samples the
# training thread every 10 ms, every server (scheduler, nannies, workers) ticks its event loop every 20 ms, and the
# system and memory monitors poll every 0.5 s and 0.1 s. All of it competes with training for the cores and the
# GIL, and none of it is used here (no dashboard). Slowed down, Dask/loky evaluations/min went from 0.79 to 0.87-0.89
# on 2 cores (benchmarks/search_throughput.py); lowering the event loops' priority (start, run_one) then gave 0.92
# (workers' loops) and 0.87-0.99 (the controller's too; runs on this noisy machine vary by ~10%). The memory monitor
# still guards memory limits, and a blocked event loop is still reported, within a second.
_LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


class BackendError(RuntimeError):
    """Workers cannot be started or reached; the message says why, in one line."""


@dataclass(frozen=True)
class Done:
    """A finished candidate: its id, its result and the worker seconds it used."""

    cid: int
    result: EvalResult
    busy: float


class Backend(Protocol):
    depth: int                                         # candidates handed to each worker: 1 runs, the rest queue
    def start(self) -> None: ...                       # start and warm the workers (blocks)
    def capacity(self) -> int: ...                     # how many candidates can run at once
    def running(self) -> int: ...
    def submit(self, cid: int, text: str, task: TaskSpec | None = None) -> None: ...  # task: default the backend's
    def wait(self, timeout: float) -> list[Done]: ...  # results finished within ``timeout`` seconds (maybe none)
    def close(self) -> None: ...                       # stop everything, in-flight work included


def _timeout_result(timeout: float) -> EvalResult:
    return EvalResult("timeout", message=f"no result after {timeout:g} s (evaluation.timeout); its worker was stopped")


class _Slot:
    """One loky executor with one process: a fault stops only this slot's candidate, and its process is known."""

    def __init__(self, function: str) -> None:
        self.executor = ProcessPoolExecutor(max_workers=1, env=_THREAD_ENV, initializer=keep_loky_worker)
        self.ready_at: float | None = None  # when the worker finished warming up (set from loky's thread)
        self.warm = self.executor.submit(warm, function)
        self.warm.add_done_callback(self._ready)
        self.future: cf.Future | None = None
        self.cid = -1
        self.submitted = 0.0

    def _ready(self, _: cf.Future) -> None:
        self.ready_at = time.monotonic()

    def started(self) -> float | None:
        """When the current candidate started running (not before its worker was up), or None if not yet."""
        return None if self.ready_at is None else max(self.submitted, self.ready_at)

    def kill(self) -> None:
        self.executor.shutdown(wait=False, kill_workers=True)


class LokyBackend:
    """``workers`` local processes through joblib's loky, one single-process executor per slot."""

    depth = 1  # a loky round trip is ~4 ms; a queued candidate would die with its slot's process on a timeout

    def __init__(self, function: str, task: TaskSpec, workers: int, timeout: float) -> None:
        self.function, self.task, self.workers, self.timeout = function, task, workers, timeout
        self.slots: list[_Slot] = []

    def start(self) -> None:
        # Stopping a worker on purpose (timeout, close) makes loky warn that a worker stopped with jobs queued.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor")
        self.slots = [_Slot(self.function) for _ in range(self.workers)]
        for slot in self.slots:
            try:
                slot.warm.result()
            except Exception as exc:
                self.close()
                raise BackendError(f"a loky worker could not start: {type(exc).__name__}: {exc}") from exc

    def capacity(self) -> int:
        return len(self.slots)

    def running(self) -> int:
        return sum(s.future is not None for s in self.slots)

    def submit(self, cid: int, text: str, task: TaskSpec | None = None) -> None:
        slot = next(s for s in self.slots if s.future is None)
        slot.cid, slot.submitted = cid, time.monotonic()
        slot.future = slot.executor.submit(run_one, self.function, text, task or self.task)

    def _restart(self, slot: _Slot) -> None:
        slot.kill()
        self.slots[self.slots.index(slot)] = _Slot(self.function)

    def wait(self, timeout: float) -> list[Done]:
        busy = {s.future: s for s in self.slots if s.future is not None}
        if not busy:
            return []
        now = time.monotonic()
        if self.timeout:
            starts = [t for s in busy.values() if (t := s.started()) is not None]
            if starts:  # wake up in time to stop the next candidate that runs out of time
                timeout = max(0.0, min(timeout, min(starts) + self.timeout - now))
        finished, _ = cf.wait(busy, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = [self._collect(busy[f], f) for f in finished]
        now = time.monotonic()
        for slot in busy.values():
            start = slot.started()
            if slot.future is not None and slot.future.done():  # finished while we were collecting the others
                out.append(self._collect(slot, slot.future))
            elif slot.future is not None and self.timeout and start is not None and now - start > self.timeout:
                out.append(Done(slot.cid, _timeout_result(self.timeout), now - start))
                self._restart(slot)
        return out

    def _collect(self, slot: _Slot, future: cf.Future) -> Done:
        slot.future = None
        start = slot.started() or slot.submitted
        try:
            result, busy = future.result()
            return Done(slot.cid, result, busy)
        except BrokenProcessPool as exc:  # the process died: SIGKILL, segfault, out of memory
            self._restart(slot)
            return Done(slot.cid, EvalResult("crashed", message=_first_line(exc)), time.monotonic() - start)
        except Exception as exc:  # could not run at all (e.g. the function does not import in the worker)
            return Done(slot.cid, EvalResult("error", message=f"{type(exc).__name__}: {_first_line(exc)}"),
                        time.monotonic() - start)

    def close(self) -> None:
        for slot in self.slots:
            slot.kill()
        self.slots = []


class DaskBackend:
    """Dask distributed: the scheduler at ``scheduler``, or a LocalCluster of ``workers`` one-thread processes.

    Each worker thread holds two candidates: one trains, the next waits on the worker (Dask's scheduler sends each
    one-thread worker two such tasks, ``worker-saturation`` 1.1 rounded up). A Dask round trip (result to the
    scheduler and the client, next task back) took ~12 ms on 2 cores, a tenth of a short digits candidate; queued, the
    next one starts at once. Timeouts count from a task's start, which its worker reports (``run_one_on_dask``)."""

    depth = 2

    def __init__(self, function: str, task: TaskSpec, workers: int, timeout: float, scheduler: str) -> None:
        self.function, self.task, self.workers, self.timeout, self.scheduler = function, task, workers, timeout, \
            scheduler
        self.client: Any = None
        self.cluster: Any = None
        self.futures: dict[str, tuple[Any, int, float]] = {}  # dask key -> (future, cid, submitted)
        self.started: dict[str, float] = {}                     # dask key -> when its start was reported
        self._capacity = (0, 0.0)

    def start(self) -> None:
        import dask
        from distributed import Client, LocalCluster  # before config.set: importing distributed sets its defaults
        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="15s")
            else:
                with dask.config.set(_LOCAL_CLUSTER_CONFIG):
                    # The scheduler and nannies read the config now; the workers get a copy, so a worker that a
                    # nanny restarts later (after a timeout) keeps it too.
                    self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None, env=_THREAD_ENV,
                                                silence_logs=logging.ERROR, config=copy.deepcopy(dask.config.config))
                self.client = Client(self.cluster)
                # Our event loop (scheduler, nannies) at nice 19, as each worker's loop (run_one): 0.92 -> 0.99 of
                # loky's evaluations/min in one side-by-side run on 2 cores. A worker a nanny restarts later is
                # started from this loop and inherits nice 19 for its training too; that costs only where other work
                # oversubscribes the machine.
                self.client.run_on_scheduler(lower_priority)
            self.client.subscribe_topic(STARTED_TOPIC, self._on_started)
            self.client.run(warm, self.function)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise BackendError(f"cannot reach the Dask scheduler at {self.scheduler or 'LocalCluster'}: "
                               f"{_first_line(exc)}; is `dask scheduler` running there?") from exc
        self.capacity()

    def capacity(self) -> int:
        n, checked = self._capacity
        if time.monotonic() - checked > 5.0:  # workers may join or leave a running cluster
            n = sum(self.client.nthreads().values())
            self._capacity = (n, time.monotonic())
        return n

    def running(self) -> int:
        return len(self.futures)

    def submit(self, cid: int, text: str, task: TaskSpec | None = None) -> None:
        key = f"evaluate-{cid}-{uuid.uuid4().hex[:8]}"
        fut = self.client.submit(run_one_on_dask, self.function, text, task or self.task, key=key, pure=False)
        self.futures[key] = (fut, cid, time.monotonic())

    def _on_started(self, event: tuple[float, dict]) -> None:
        # Called on the client's event loop thread; the time of arrival is a little after the true start, so a
        # timeout can only come late, never early. A task that restarts elsewhere reports again.
        self.started[event[1]["key"]] = time.monotonic()

    def _deadline(self, key: str, submitted: float) -> float:
        """When a candidate runs out of time: ``timeout`` after its reported start. Before any report (an event can
        be lost, e.g. sent before the subscription reached the scheduler) it may be queued behind one candidate
        that itself may take up to ``timeout``: so twice that after submission."""
        start = self.started.get(key)
        return start + self.timeout if start is not None else submitted + 2 * self.timeout

    def wait(self, timeout: float) -> list[Done]:
        from distributed import KilledWorker, wait
        if not self.futures:
            return []
        try:
            wait([f for f, _, _ in self.futures.values()], timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            pass
        out = []
        now = time.monotonic()
        for key, (fut, cid, submitted) in list(self.futures.items()):
            if fut.status == "finished":
                result, busy = fut.result()
                out.append(Done(cid, result, busy))
            elif fut.status == "error":
                exc = fut.exception()
                status = "crashed" if isinstance(exc, KilledWorker) else "error"
                out.append(Done(cid, EvalResult(status, message=f"{type(exc).__name__}: {_first_line(exc)}"),
                                now - submitted))
            elif self.timeout and now > self._deadline(key, submitted):
                out.append(Done(cid, _timeout_result(self.timeout), now - self.started.get(key, submitted)))
                self._stop(fut)
            else:
                continue
            del self.futures[key]
            self.started.pop(key, None)
        return out

    def _stop(self, fut: Any) -> None:
        """Free the worker thread a timed-out candidate holds: Dask cannot stop a running task, so restart its
        worker (through its nanny)."""
        where = [w for w, keys in self.client.processing().items() if fut.key in keys]
        fut.cancel()
        if where:
            try:
                self.client.restart_workers(where, raise_for_error=False)
            except Exception:  # noqa: BLE001 - a worker without a nanny keeps running; the result is dropped anyway
                pass

    def close(self) -> None:
        if self.client is not None:
            if self.futures:
                self.client.cancel([f for f, _, _ in self.futures.values()])
            self.futures, self.started = {}, {}
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None


def make_backend(parallel: ParallelConfig, function: str, task: TaskSpec, timeout: float) -> Backend:
    workers = parallel.workers or os.cpu_count() or 1
    if parallel.backend == "dask":
        return DaskBackend(function, task, workers, timeout, parallel.scheduler)
    return LokyBackend(function, task, workers, timeout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
