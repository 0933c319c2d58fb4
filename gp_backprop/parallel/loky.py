"""The local backend: ``workers`` processes through joblib's loky, one single-process executor per slot, so a fault
stops only that slot's candidate and its process is known."""
from __future__ import annotations

import concurrent.futures as cf
import time
import warnings

from joblib.externals.loky import ProcessPoolExecutor
from joblib.externals.loky.process_executor import BrokenProcessPool

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.errors import first_line
from gp_backprop.parallel.base import THREAD_ENV, BackendError, Done, quiet_resource_tracker, timeout_result
from gp_backprop.parallel.worker import keep_loky_worker, run_one, warm

__all__ = ["LokyBackend"]


class _Slot:
    """One loky executor with one process: a fault stops only this slot's candidate, and its process is known."""

    def __init__(self, function: str) -> None:
        # Loky restarts a worker whose memory grows 300 MB past its size after the first call (our warm-up, which
        # imports torch and the evaluation function); a training stays well within that (benchmarks/README.md), so
        # a search keeps its processes (tests/gp_backprop/parallel/test_worker.py counts them).
        self.executor = ProcessPoolExecutor(max_workers=1, env=THREAD_ENV, initializer=keep_loky_worker)
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

    depth = 1  # a loky round trip is milliseconds (benchmarks/README); a queued one would die with its slot's process

    def __init__(self, function: str, task: TaskSpec, workers: int, timeout: float, scheduler: str = "") -> None:
        if scheduler:
            raise BackendError(f"scheduler {scheduler!r} needs the dask backend; loky runs on this machine only")
        self.function, self.task, self.workers, self.timeout = function, task, workers, timeout
        self.slots: list[_Slot] = []

    def start(self) -> None:
        # Stopping a worker on purpose (timeout, close) makes loky warn that a worker stopped with jobs queued.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor")
        quiet_resource_tracker()
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
                out.append(Done(slot.cid, timeout_result(self.timeout), now - start))
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
            return Done(slot.cid, EvalResult("crashed", message=first_line(exc)), time.monotonic() - start)
        except Exception as exc:  # could not run at all (e.g. the function does not import in the worker)
            return Done(slot.cid, EvalResult("error", message=f"{type(exc).__name__}: {first_line(exc)}"),
                        time.monotonic() - start)

    def close(self) -> None:
        for slot in self.slots:
            slot.kill()
        self.slots = []
