"""The local backend: ``workers`` processes through joblib's loky, one single-process executor per slot, each slot
training a chunk of up to ``members`` members at a time (one batched network where the function allows it), so a
fault stops only that slot's chunk and its process is known."""
from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import tempfile
import time
import warnings

from joblib.externals.loky import ProcessPoolExecutor
from joblib.externals.loky.process_executor import BrokenProcessPool

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.errors import first_line
from gp_backprop.parallel.base import THREAD_ENV, BackendError, Done, quiet_resource_tracker, timeout_result
from gp_backprop.parallel.worker import Item, keep_loky_worker, read_progress, run_chunk_to_file, warm

__all__ = ["LokyBackend", "RETRIES"]

RETRIES = 3   # times a member that never started is sent again after its chunk's process died or timed out


class _Slot:
    """One loky executor with one process: a fault stops only this slot's chunk, and its process is known."""

    def __init__(self, function: str) -> None:
        # Loky restarts a worker whose memory grows 300 MB past its size after the first call (our warm-up, which
        # imports torch and the evaluation function); a training stays well within that (benchmarks/README.md), so
        # a search keeps its processes (tests/gp_backprop/parallel/test_worker.py counts them).
        self.executor = ProcessPoolExecutor(max_workers=1, env=THREAD_ENV, initializer=keep_loky_worker)
        self.ready_at: float | None = None  # when the worker finished warming up (set from loky's thread)
        self.warm = self.executor.submit(warm, function)
        self.warm.add_done_callback(self._ready)
        self.future: cf.Future | None = None
        self.items: list[Item] = []
        self.progress = ""                  # the file the worker reports the chunk's members to, as they end
        self.submitted = 0.0
        self.seen: dict[int, tuple[float, int]] = {}   # member -> (when its group's start was seen, group size)
        self.reported: set[int] = set()     # members whose result was handed out already

    def _ready(self, _: cf.Future) -> None:
        self.ready_at = time.monotonic()

    def started(self) -> float | None:
        """When the current chunk started running (not before its worker was up), or None if not yet."""
        return None if self.ready_at is None else max(self.submitted, self.ready_at)

    def deadline(self, timeout: float) -> float | None:
        """When the member training now runs out of time: ``timeout`` per member of its group after the group's
        start was seen (so never early); before any start is seen, ``timeout`` per member of the chunk."""
        if not timeout or self.future is None:
            return None
        running = [self.seen[jid] for jid, _, _ in self.items if jid in self.seen and jid not in self.reported]
        if running:
            return min(t + timeout * n for t, n in running)
        start = self.started()
        return None if start is None else start + timeout * len(self.items)

    def news(self) -> list[Done]:
        """The chunk's members finished since the last call, from the progress file."""
        groups, finished = read_progress(self.progress)
        now = time.monotonic()
        for group in groups:
            for jid in group:
                self.seen.setdefault(jid, (now, len(group)))
        out = [Done(jid, *finished[jid]) for jid, _, _ in self.items if jid in finished and jid not in self.reported]
        self.reported.update(d.cid for d in out)
        return out

    def kill(self) -> None:
        self.executor.shutdown(wait=False, kill_workers=True)


class LokyBackend:
    """``workers`` local processes through joblib's loky, one single-process executor per slot.

    Submitted members wait until a slot is free, which takes up to ``members`` of them as one chunk. A chunk may
    run ``timeout`` seconds per member it holds (its members train together, so one of them alone cannot be timed);
    after a timeout or a crash its finished members keep their results, the ones that were training get "timeout"
    or "crashed", and the ones that had not started are sent again."""

    def __init__(self, function: str, task: TaskSpec, workers: int, timeout: float, scheduler: str = "",
                 members: int = 1) -> None:
        if scheduler:
            raise BackendError(f"scheduler {scheduler!r} needs the dask backend; loky runs on this machine only")
        self.function, self.task, self.workers, self.timeout = function, task, workers, timeout
        # One chunk per slot and none queued: a loky round trip is milliseconds (benchmarks/README), and a queued
        # chunk would die with its slot's process.
        self.depth = members
        self.slots: list[_Slot] = []
        self.waiting: list[Item] = []
        self.retries: dict[int, int] = {}
        self.folder = ""

    def start(self) -> None:
        # Stopping a worker on purpose (timeout, close) makes loky warn that a worker stopped with jobs queued.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor")
        quiet_resource_tracker()
        self.folder = tempfile.mkdtemp(prefix="gp-backprop-chunks-")
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
        """Members submitted whose result has not been handed out yet."""
        return len(self.waiting) + sum(len(s.items) - len(s.reported) for s in self.slots if s.future is not None)

    def submit(self, cid: int, text: str, task: TaskSpec | None = None) -> None:
        self.waiting.append((cid, text, task or self.task))

    def _pack(self) -> None:
        """Give free slots full chunks; a partial one only when the caller has nothing more to submit (fewer
        members out than it may have), e.g. at the end of a search. Chunks then hold the same members whatever the
        timing, and so do the results' order: with one worker, a run and its resume train alike."""
        for slot in self.slots:
            full = len(self.waiting) >= self.depth or self.running() < self.capacity() * self.depth
            if slot.future is None and self.waiting and full:
                slot.items, self.waiting = self.waiting[:self.depth], self.waiting[self.depth:]
                slot.progress = os.path.join(self.folder, f"{slot.items[0][0]}.jsonl")
                slot.submitted, slot.seen, slot.reported = time.monotonic(), {}, set()
                slot.future = slot.executor.submit(run_chunk_to_file, self.function, slot.items, slot.progress)

    def _restart(self, slot: _Slot) -> None:
        slot.kill()
        self.slots[self.slots.index(slot)] = _Slot(self.function)

    def wait(self, timeout: float) -> list[Done]:
        """Members finished within ``timeout`` seconds: read from each chunk's progress as they end (not when the
        chunk ends), so the search hears of a result as soon as it is known."""
        self._pack()
        busy = {s.future: s for s in self.slots if s.future is not None}
        if not busy:
            return []
        deadlines = [d for s in busy.values() if (d := s.deadline(self.timeout)) is not None]
        if deadlines:  # wake up in time to stop the next chunk that runs out of time
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        cf.wait(busy, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out: list[Done] = []
        for slot in busy.values():
            if slot.future.done():
                out += self._collect(slot)
                continue
            out += slot.news()
            deadline = slot.deadline(self.timeout)
            if deadline is not None and time.monotonic() > deadline:
                out += self._salvage(slot, timeout_result(self.timeout), "timed out")
                self._restart(slot)
        return out

    def _collect(self, slot: _Slot) -> list[Done]:
        future, start = slot.future, slot.started() or slot.submitted
        try:
            done = [Done(jid, result, busy) for jid, result, busy in future.result() if jid not in slot.reported]
        except BrokenProcessPool as exc:  # the process died: SIGKILL, segfault, out of memory
            out = self._salvage(slot, EvalResult("crashed", message=first_line(exc)), "crashed")
            self._restart(slot)
            return out
        except Exception as exc:  # could not run at all (e.g. the function does not import in the worker)
            error = EvalResult("error", message=f"{type(exc).__name__}: {first_line(exc)}")
            share = (time.monotonic() - start) / len(slot.items)
            done = [Done(jid, error, share) for jid, _, _ in slot.items if jid not in slot.reported]
        self._clear(slot)
        return done

    def _salvage(self, slot: _Slot, status: EvalResult, why: str) -> list[Done]:
        """After a fault: the finished members' results, ``status`` for the ones that were training, and the ones
        that had not started back to the front of the queue (recorded crashed after ``RETRIES`` such losses)."""
        out = slot.news()
        elapsed = time.monotonic() - (slot.started() or slot.submitted)
        training = [jid for jid, _, _ in slot.items if jid in slot.seen and jid not in slot.reported]
        out += [Done(jid, status, elapsed / len(training)) for jid in training]
        again = []
        for item in slot.items:
            if item[0] in slot.seen:
                continue
            self.retries[item[0]] = self.retries.get(item[0], 0) + 1
            if self.retries[item[0]] > RETRIES:
                message = f"its chunk {why} {RETRIES + 1} times before it started"
                out.append(Done(item[0], EvalResult("crashed", message=message), 0.0))
            else:
                again.append(item)
        self.waiting[:0] = again
        self._clear(slot, keep={item[0] for item in again})
        return out

    def _clear(self, slot: _Slot, keep: set[int] = frozenset()) -> None:
        for jid, _, _ in slot.items:
            if jid not in keep:
                self.retries.pop(jid, None)
        slot.future, slot.items = None, []
        if slot.progress:
            try:
                os.unlink(slot.progress)
            except OSError:
                pass

    def close(self) -> None:
        for slot in self.slots:
            slot.kill()
        self.slots, self.waiting = [], []
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
