"""The Dask distributed backend: members travel in chunks (one Dask task each) and come back one by one as events.

A Dask task has a fixed CPU cost (submission, scheduling, the result's gather and release, in the controller's event
loop and the worker's) that a single digits training cannot hide: with one training per task the cores trained
markedly less of the time than with loky (benchmarks/README.md). So a task carries a chunk of members (trainings):
``members`` (they train as one batched network, ``worker.run_members``), or, when that is fewer than ``MAX_CHUNK``,
up to ``MAX_CHUNK`` while that many are less than about ``CHUNK_SECONDS`` of training (sized from the results so far;
the search's default chunk of 12 is above it). The worker reports each group's start and each
member's result as a Dask event the moment it happens (``worker.run_chunk_on_dask``), so results, timeouts and the
progress bar stay per member.
"""
from __future__ import annotations

import copy
import logging
import queue
import time
import uuid
from dataclasses import dataclass
from typing import Any

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.errors import first_line
from gp_backprop.parallel.base import THREAD_ENV, BackendError, Done, quiet_resource_tracker, timeout_result
from gp_backprop.parallel.worker import EVENTS_TOPIC, lower_priority, run_chunk_on_dask, warm

__all__ = ["DaskBackend", "CHUNK_SECONDS", "MAX_CHUNK"]

CHUNK_SECONDS = 0.5   # training per Dask task: the task's fixed cost becomes ~2% of it
MAX_CHUNK = 8         # a chunk grows by time up to this, however short: each chunk waiting on a worker is in flight
RETRIES = 3           # times a candidate is sent again after its chunk was lost through no fault of its own

# Dask's housekeeping for a LocalCluster whose workers use every core. By default the worker profiler samples the
# training thread every 10 ms, every server (scheduler, nannies, workers) ticks its event loop every 20 ms, and the
# system and memory monitors poll every 0.5 s and 0.1 s. All of it competes with training for the cores and the
# GIL, and none of it is used here (no dashboard). Slowing it down raised Dask/loky evaluations/min on 2 cores
# (benchmarks/README.md). The memory monitor still guards memory limits, and a blocked event loop is still reported,
# within a second. (The scheduler keeps only the last 1,000 events of a topic, ours included, each one candidate's
# small result: distributed.admin.low-level-log-length.)
_LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@dataclass
class _Cand:
    text: str
    task: TaskSpec
    key: str = ""                  # the chunk (Dask task) that holds it; "" while it waits to be packed
    started: float | None = None   # when its worker reported its start (controller clock)
    allow: int = 1                 # members training with it in one batched network: its timeout is this many
    retries: int = 0


@dataclass
class _Chunk:
    future: Any
    submitted: float
    cands: dict[int, _Cand]        # its candidates, in order (the objects: one sent again is a new chunk's)


class DaskBackend:
    """Dask distributed: the scheduler at ``scheduler``, or a LocalCluster of ``workers`` one-thread processes.

    Each worker thread holds two chunks: one trains, the next waits on the worker (Dask's scheduler sends each
    one-thread worker two tasks, ``worker-saturation`` 1.1 rounded up), so a worker never waits for a round trip.
    Timeouts count from a candidate's reported start; a timed-out candidate's worker is restarted through its nanny,
    and the rest of its chunk is sent again."""

    def __init__(self, function: str, task: TaskSpec, workers: int, timeout: float, scheduler: str,
                 members: int = 1) -> None:
        self.function, self.task, self.workers, self.timeout, self.scheduler = function, task, workers, timeout, \
            scheduler
        self.members = members                  # members per chunk at least: they train as one batched network
        self.client: Any = None
        self.cluster: Any = None
        self.cands: dict[int, _Cand] = {}      # every candidate submitted and not yet done
        self.waiting: list[int] = []            # submitted, not yet in a chunk
        self.chunks: dict[str, _Chunk] = {}     # dask key -> chunk
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()  # events and finished chunks, from Dask's threads
        self.mean_busy = 0.0                    # seconds per candidate, a running mean (0: none seen yet)
        self._capacity = (0, 0.0)

    @property
    def chunk(self) -> int:
        """Members per Dask task now: ``members``, or up to MAX_CHUNK while that many take under ~CHUNK_SECONDS."""
        if self.mean_busy <= 0:
            return self.members
        return max(self.members, min(MAX_CHUNK, int(CHUNK_SECONDS / self.mean_busy)))

    @property
    def depth(self) -> int:
        return 2 * self.chunk

    def start(self) -> None:
        import dask
        from distributed import Client, LocalCluster  # before config.set: importing distributed sets its defaults
        quiet_resource_tracker()
        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="15s")
            else:
                with dask.config.set(_LOCAL_CLUSTER_CONFIG):
                    # The scheduler and nannies read the config now; the workers get a copy, so a worker that a
                    # nanny restarts later (after a timeout) keeps it too.
                    self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None, env=THREAD_ENV,
                                                silence_logs=logging.ERROR, config=copy.deepcopy(dask.config.config))
                self.client = Client(self.cluster)
                # Our event loop (scheduler, nannies) at nice 19, as each worker's loop (run_one): their bookkeeping
                # then never preempts a training. A worker a nanny restarts later is started from this loop and
                # inherits nice 19 for its training too; that costs only where other work oversubscribes the machine.
                self.client.run_on_scheduler(lower_priority)
            # Subscribed before any task is submitted (both travel on the client's one ordered stream), so no
            # event is missed.
            self.client.subscribe_topic(EVENTS_TOPIC, self._on_event)
            self.client.run(warm, self.function)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise BackendError(f"cannot reach the Dask scheduler at {self.scheduler or 'LocalCluster'}: "
                               f"{first_line(exc)}; is `dask scheduler` running there?") from exc
        self.capacity()

    def capacity(self) -> int:
        n, checked = self._capacity
        if time.monotonic() - checked > 5.0:  # workers may join or leave a running cluster
            n = sum(self.client.nthreads().values())
            self._capacity = (n, time.monotonic())
        return n

    def running(self) -> int:
        return len(self.cands)

    def submit(self, cid: int, text: str, task: TaskSpec | None = None) -> None:
        self.cands[cid] = _Cand(text, task or self.task)
        self.waiting.append(cid)

    def _pack(self) -> None:
        """Send the waiting candidates in full chunks; send a partial one only when the workers may run dry (fewer
        unstarted candidates out there than workers), e.g. at the end of a search."""
        size = self.chunk
        while len(self.waiting) >= size:
            self._send(self.waiting[:size])
            del self.waiting[:size]
        if self.waiting and sum(c.key != "" and c.started is None for c in self.cands.values()) < self.capacity():
            self._send(self.waiting)
            self.waiting = []

    def _send(self, cids: list[int]) -> None:
        key = f"evaluate-{cids[0]}-{uuid.uuid4().hex[:8]}"
        cands = {cid: self.cands[cid] for cid in cids}
        for c in cands.values():
            c.key, c.started = key, None
        items = [(cid, c.text, c.task) for cid, c in cands.items()]
        fut = self.client.submit(run_chunk_on_dask, self.function, items, key=key, pure=False)
        self.chunks[key] = _Chunk(fut, time.monotonic(), cands)
        fut.add_done_callback(lambda f: self.inbox.put(("chunk", f.key, None)))

    def _on_event(self, event: tuple[float, dict]) -> None:
        # On the client's event loop thread: only hand over. The time of arrival is a little after the true start,
        # so a timeout can only come late, never early.
        self.inbox.put(("event", event[1], time.monotonic()))

    def _deadline(self, c: _Cand) -> float:
        """When a candidate runs out of time: ``timeout`` after its reported start. Before a report (there should
        always be one; this is a backstop) it may wait behind its chunk and one chunk more: so that many timeouts
        after its chunk was sent."""
        if c.started is not None:
            return c.started + self.timeout * c.allow
        chunk = self.chunks[c.key]
        return chunk.submitted + (2 * len(chunk.cands) + 1) * self.timeout

    def wait(self, timeout: float) -> list[Done]:
        self._pack()
        if not self.cands:
            return []
        if self.timeout:
            deadlines = [self._deadline(c) for c in self.cands.values() if c.key]
            if deadlines:  # wake up in time to stop the next candidate that runs out of time
                timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        out: list[Done] = []
        try:
            item = self.inbox.get(timeout=timeout)
            while True:
                self._handle(*item, out)
                item = self.inbox.get_nowait()
        except queue.Empty:
            pass
        if self.timeout:
            self._time_out(out)
        return out

    def _handle(self, kind: str, what: Any, when: float | None, out: list[Done]) -> None:
        if kind == "event":
            cid = what.get("done")
            if cid in self.cands and "result" in what:  # from any chunk that held it: a result is a result
                out.append(self._done(cid, EvalResult.from_dict(what["result"]), what["busy"], measured=True))
            group = what.get("start", ())
            for cid in group:
                c = self.cands.get(cid)
                if c is not None and c.key == what.get("key"):  # not a stale start from a chunk given up on
                    c.started, c.allow = when, len(group)
        else:
            self._chunk_ended(what, out)

    def _done(self, cid: int, result: EvalResult, busy: float, measured: bool = False) -> Done:
        """Settle a candidate; ``measured``: ``busy`` is its worker's time inside the function (sizes chunks)."""
        if not self.cands.pop(cid).key and cid in self.waiting:  # e.g. a late result of a chunk given up on
            self.waiting.remove(cid)
        if measured:
            self.mean_busy = busy if self.mean_busy <= 0 else 0.9 * self.mean_busy + 0.1 * busy
        return Done(cid, result, busy)

    def _chunk_ended(self, key: str, out: list[Done]) -> None:
        """A chunk's task finished, failed or was cancelled; settle the candidates no event settled."""
        from distributed import KilledWorker
        chunk = self.chunks.pop(key, None)
        if chunk is None:  # given up on already (a timeout)
            return
        left = [cid for cid, c in chunk.cands.items() if self.cands.get(cid) is c]
        if not left:
            return
        fut, now = chunk.future, time.monotonic()
        if fut.status == "finished":
            try:
                results = fut.result()
            except Exception:  # noqa: BLE001 - e.g. its worker left with the result before it was gathered
                results = []
            for cid, result, busy in results:
                if cid in left:
                    out.append(self._done(cid, result, busy, measured=True))
                    left.remove(cid)
            self._again(left, out, "its chunk ended without its result")
        elif fut.status == "error":
            exc = fut.exception()
            message = f"{type(exc).__name__}: {first_line(exc)}"
            if isinstance(exc, KilledWorker):
                # Dask retried the chunk on fresh workers and each died: blame the members that were running
                # (started, no result); the ones behind them never ran and go again.
                for cid in [cid for cid in left if chunk.cands[cid].started is not None]:
                    left.remove(cid)
                    out.append(self._done(cid, EvalResult("crashed", message=message), now - chunk.submitted))
                self._again(left, out, message)
            else:  # could not run at all (e.g. the function does not import on the worker): the same for all
                for cid in left:
                    out.append(self._done(cid, EvalResult("error", message=message), now - chunk.submitted))
        else:  # cancelled by Dask (e.g. the scheduler restarted)
            self._again(left, out, "its Dask task was cancelled")

    def _again(self, cids: list[int], out: list[Done], why: str) -> None:
        """Send candidates whose chunk was lost again, ahead of the rest; a few times, then record them crashed."""
        for cid in cids:
            c = self.cands[cid]
            c.key, c.started, c.retries = "", None, c.retries + 1
            if c.retries > RETRIES:
                out.append(self._done(cid, EvalResult("crashed", message=f"lost {c.retries} times: {why}"), 0.0))
        self.waiting[:0] = [cid for cid in cids if cid in self.cands]

    def _time_out(self, out: list[Done]) -> None:
        """Members past their deadline get "timeout", with the others of their batched group (they trained in the
        same network); the members of their chunk that had not started go again."""
        now = time.monotonic()
        for cid, c in list(self.cands.items()):
            if self.cands.get(cid) is not c or not c.key or now <= self._deadline(c):
                continue   # settled with its group just now, waiting to be packed, or still within its time
            chunk = self.chunks.pop(c.key)
            left = [x for x, cx in chunk.cands.items() if self.cands.get(x) is cx]
            stopped = [x for x in left if x == cid or (c.started is not None and chunk.cands[x].started == c.started)]
            for x in stopped:
                out.append(self._done(x, timeout_result(self.timeout), now - (c.started or chunk.submitted)))
            self._stop(chunk.future)
            self._again([x for x in left if x not in stopped], out, "its chunk's worker was restarted after a timeout")

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
            if self.chunks:
                self.client.cancel([c.future for c in self.chunks.values()])
            self.cands, self.waiting, self.chunks = {}, [], {}
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
