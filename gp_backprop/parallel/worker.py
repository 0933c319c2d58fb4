"""What runs inside a worker process (loky or Dask): train one equation, given as text, on a ``TaskSpec``.

Only the evaluation function's import path, the equation text and the task cross the process boundary; the result
comes back as an ``EvalResult`` with the seconds spent inside the function (for worker utilization).
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.errors import first_line

__all__ = ["run_one", "run_chunk_on_dask", "warm", "resolve", "lower_priority", "EVENTS_TOPIC"]

EVENTS_TOPIC = "gp-backprop-candidates"   # Dask event topic: a candidate started, or finished with its result

_FUNCTIONS: dict[str, Callable[[str, TaskSpec], EvalResult]] = {}
_READY = False
_LOOP_LOWERED = False


def resolve(spec: str) -> Callable[[str, TaskSpec], EvalResult]:
    """The function named ``module:attr`` (imported once per process)."""
    fn = _FUNCTIONS.get(spec)
    if fn is None:
        module, _, attr = spec.partition(":")
        fn = _FUNCTIONS[spec] = getattr(importlib.import_module(module), attr)
    return fn


def _setup() -> None:
    global _READY
    if _READY:
        return
    import torch
    # One core per worker: the pool, not torch, spreads the work; torch's own threads would oversubscribe.
    torch.set_num_threads(1)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C reaches the whole process group; the controller decides what happens to in-flight work.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    _READY = True


def _exit_with_parent(ppid: int) -> None:
    """A worker whose parent was killed (kill -9 of the controller) would wait for work forever: leave instead."""
    while True:
        time.sleep(1.0)
        if os.getppid() != ppid:
            os._exit(0)


def keep_loky_worker() -> None:
    """Loky initializer: keep this worker through a SIGTERM meant for the search."""
    # SIGTERM to the process group (a scheduler, `kill -TERM -PGID`) reaches the workers too: the controller stops
    # gracefully and decides what happens to their candidates, so they must not die first and be recorded "crashed".
    # Loky stops its workers with SIGKILL, and a worker whose controller is gone leaves by itself (_exit_with_parent).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def lower_priority(native_id: int | None = None) -> None:
    """Nice one thread (default: the calling one) to 19, on Linux, where thread priorities are per thread.

    For a Dask LocalCluster's event loops: they share the cores with the trainings, and at normal priority their
    bookkeeping preempts a training. At nice 19 they still run when they must (a core frees up the moment a
    training ends, which is when its result travels) and never starve (unlike SCHED_IDLE), so heartbeats and
    timeouts keep working under load. Elsewhere, or where the system refuses, nothing changes."""
    if not sys.platform.startswith("linux"):  # elsewhere a thread id is not a valid target for setpriority
        return
    try:
        os.setpriority(os.PRIO_PROCESS, native_id or threading.get_native_id(), 19)
    except OSError:
        pass


def warm(function: str) -> float:
    """Import everything an evaluation needs, so the first candidate's clock does not include start-up."""
    _setup()
    resolve(function)
    return time.time()


def run_one(function: str, text: str, task: TaskSpec) -> tuple[EvalResult, float]:
    """``function(text, task)`` and the seconds it took; an exception becomes status "error" (the search goes on)."""
    global _LOOP_LOWERED
    _setup()
    if not _LOOP_LOWERED and threading.current_thread() is not threading.main_thread():
        # A Dask worker: this executor thread trains while the main thread runs the worker's event loop. Lower the
        # loop, not the training (threads inherit their creator's priority, so the loop must not be lowered before
        # it starts this thread); a worker its nanny restarts does this again on its first candidate.
        lower_priority(threading.main_thread().native_id)
        _LOOP_LOWERED = True
    fn = resolve(function)
    t0 = time.perf_counter()
    try:
        result = fn(text, task)
    except Exception as exc:  # a buggy rule or evaluator must cost one candidate, not the search
        result = EvalResult("error", message=f"{type(exc).__name__}: {first_line(exc)}"[:500])
    if not isinstance(result, EvalResult):
        result = EvalResult("error", message=f"{function} returned {type(result).__name__}, not an EvalResult")
    return result, time.perf_counter() - t0


def run_chunk_on_dask(function: str, items: list[tuple[int, str, TaskSpec]]) -> list[tuple[int, EvalResult, float]]:
    """``run_one`` for each (cid, text, task) of a chunk, in order, on a Dask worker.

    Each candidate's start and result travel to the controller at once, as Dask events (through the scheduler's
    batched streams, a few messages that share one send): the controller counts a candidate's timeout from its
    start and takes its result the moment it is known, not when the whole chunk ends. The returned list repeats the
    results, in case an event was lost. One task per chunk instead of per candidate spreads Dask's per-task cost
    (submission, scheduling, the result's gather and release; benchmarks/README.md) over the chunk."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()
    worker.log_event(EVENTS_TOPIC, {"key": key, "next": items[0][0]})
    out = []
    for i, (cid, text, task) in enumerate(items):
        result, busy = run_one(function, text, task)
        following = items[i + 1][0] if i + 1 < len(items) else None
        try:
            worker.log_event(EVENTS_TOPIC, {"key": key, "done": cid, "result": result.to_dict(), "busy": busy,
                                            "next": following})
        except TypeError:  # not msgpack-able (e.g. numpy float32 from a custom function): the return value has it
            worker.log_event(EVENTS_TOPIC, {"key": key, "next": following})
        out.append((cid, result, busy))
    return out
