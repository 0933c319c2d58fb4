"""What runs inside a worker process (loky or Dask): train a chunk of (equation text, ``TaskSpec``) members.

Only the evaluation function's import path, the equation texts and the tasks cross the process boundary; each result
comes back as an ``EvalResult`` with the seconds spent on it (for worker utilization). A function ``f`` whose module
also defines ``f_many(members, on_result=None)`` (``evaluators.evaluate`` has ``evaluate_many``) trains the members
of a chunk that share data, model and budget as one batched network; other functions train them one by one. Either
way each member's start and result are reported as they happen, so a fault later in the chunk loses only the members
not finished yet.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import json
import time
from collections.abc import Callable
from typing import Any

from evaluators.population import SHARED
from evaluators.task import EvalResult, TaskSpec

from gp_backprop.errors import first_line

__all__ = ["run_one", "run_members", "run_chunk_on_dask", "run_chunk_to_file", "read_progress", "warm", "resolve",
           "resolve_many", "lower_priority", "EVENTS_TOPIC"]

Item = tuple[int, str, TaskSpec]               # (job id, equation text, task)
Report = Callable[[dict[str, Any]], None]       # {"start": [ids]} or {"done": id, "result": dict, "busy": s}

EVENTS_TOPIC = "gp-backprop-candidates"   # Dask event topic: a candidate started, or finished with its result

_FUNCTIONS: dict[str, Callable[[str, TaskSpec], EvalResult]] = {}
_MANY: dict[str, Callable[..., list[EvalResult]] | None] = {}
_READY = False
_LOOP_LOWERED = False


def resolve(spec: str) -> Callable[[str, TaskSpec], EvalResult]:
    """The function named ``module:attr`` (imported once per process)."""
    fn = _FUNCTIONS.get(spec)
    if fn is None:
        module, _, attr = spec.partition(":")
        fn = _FUNCTIONS[spec] = getattr(importlib.import_module(module), attr)
    return fn


def resolve_many(spec: str) -> Callable[..., list[EvalResult]] | None:
    """The batched form of ``module:attr``: ``module.attr_many`` if the module defines it, else None."""
    if spec not in _MANY:
        module, _, attr = spec.partition(":")
        resolve(spec)
        _MANY[spec] = getattr(importlib.import_module(module), f"{attr}_many", None)
    return _MANY[spec]


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


def _prepare() -> None:
    global _LOOP_LOWERED
    _setup()
    if not _LOOP_LOWERED and threading.current_thread() is not threading.main_thread():
        # A Dask worker: this executor thread trains while the main thread runs the worker's event loop. Lower the
        # loop, not the training (threads inherit their creator's priority, so the loop must not be lowered before
        # it starts this thread); a worker its nanny restarts does this again on its first candidate.
        lower_priority(threading.main_thread().native_id)
        _LOOP_LOWERED = True


def run_one(function: str, text: str, task: TaskSpec) -> tuple[EvalResult, float]:
    """``function(text, task)`` and the seconds it took; an exception becomes status "error" (the search goes on)."""
    _prepare()
    fn = resolve(function)
    t0 = time.perf_counter()
    try:
        result = fn(text, task)
    except Exception as exc:  # a buggy rule or evaluator must cost one candidate, not the search
        result = EvalResult("error", message=f"{type(exc).__name__}: {first_line(exc)}"[:500])
    if not isinstance(result, EvalResult):
        result = EvalResult("error", message=f"{function} returned {type(result).__name__}, not an EvalResult")
    return result, time.perf_counter() - t0


def _error(exc: BaseException) -> EvalResult:
    return EvalResult("error", message=f"{type(exc).__name__}: {first_line(exc)}"[:500])


def _groups(items: list[Item]) -> list[list[Item]]:
    """Items that can share one batched network (same data, model and budget), in order of first appearance."""
    groups: dict[tuple, list[Item]] = {}
    for item in items:
        groups.setdefault(tuple(getattr(item[2], name) for name in SHARED), []).append(item)
    return list(groups.values())


def run_members(function: str, items: list[Item], report: Report) -> list[tuple[int, EvalResult, float]]:
    """Train a chunk: each group of items that share data, model and budget in one ``f_many`` call (or one by one
    without it), reporting ``{"start": ids}`` before a group and ``{"done": id, "result", "busy"}`` for each member
    the moment its result is final. Returns (id, result, seconds) for every item, in order."""
    _prepare()
    many = resolve_many(function)
    out: dict[int, tuple[EvalResult, float]] = {}

    def done(jid: int, result: EvalResult, busy: float) -> None:
        if not isinstance(result, EvalResult):
            result = EvalResult("error", message=f"{function} returned {type(result).__name__}, not an EvalResult")
        out[jid] = (result, busy)
        report({"done": jid, "result": result.to_dict(), "busy": busy})
    for group in (_groups(items) if many is not None else [[item] for item in items]):
        report({"start": [jid for jid, _, _ in group]})
        if many is None:
            jid, text, task = group[0]
            done(jid, *run_one(function, text, task))
            continue
        t0 = time.perf_counter()
        try:
            many([(text, task) for _, text, task in group],
                 on_result=lambda i, r, group=group: done(group[i][0], r, getattr(r, "wall_time", 0.0)))
        except Exception as exc:  # the whole call failed (a bad task): its unreported members get the error
            share = (time.perf_counter() - t0) / len(group)
            for jid, _, _ in group:
                if jid not in out:
                    done(jid, _error(exc), share)
    return [(jid, *out[jid]) for jid, _, _ in items]


def run_chunk_to_file(function: str, items: list[Item], path: str) -> list[tuple[int, EvalResult, float]]:
    """``run_members`` for a loky slot: each report is a line appended to ``path`` (flushed at once), so after a
    crash or a timeout the backend still knows which members finished and with what (``read_progress``)."""
    with open(path, "a", encoding="utf-8") as f:
        def report(event: dict[str, Any]) -> None:
            f.write(json.dumps(event, default=float) + "\n")   # default: a custom function's numpy scalars
            f.flush()
        return run_members(function, items, report)


def read_progress(path: str) -> tuple[list[list[int]], dict[int, tuple[EvalResult, float]]]:
    """What ``run_chunk_to_file`` wrote so far: the groups started, in order, and the finished members' (result,
    seconds)."""
    groups: list[list[int]] = []
    finished: dict[int, tuple[EvalResult, float]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return groups, finished
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:   # a line cut short by a kill
            continue
        if "start" in event:
            groups.append(event["start"])
        if "done" in event:
            finished[event["done"]] = (EvalResult.from_dict(event["result"]), event["busy"])
    return groups, finished


def run_chunk_on_dask(function: str, items: list[Item]) -> list[tuple[int, EvalResult, float]]:
    """``run_members`` on a Dask worker, each report a Dask event (through the scheduler's batched streams, a few
    messages that share one send): the controller counts a member's timeout from its group's start and takes its
    result the moment it is known, not when the whole chunk ends. The returned list repeats the results, in case an
    event was lost. One task per chunk instead of per member spreads Dask's per-task cost (submission, scheduling,
    the result's gather and release; benchmarks/README.md) over the chunk."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()

    def report(event: dict[str, Any]) -> None:
        try:
            worker.log_event(EVENTS_TOPIC, {"key": key, **event})
        except TypeError:  # not msgpack-able (e.g. numpy float32 from a custom function): the return value has it
            pass
    return run_members(function, items, report)
