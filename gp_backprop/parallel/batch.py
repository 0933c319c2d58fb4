"""Train a fixed list of (equation text, task) jobs on a started backend, every worker kept busy; results in order.

For work that is known up front (tuning a learning rate, the funnel's re-tests), unlike the search's open-ended loop.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.parallel.base import Backend

__all__ = ["run_all"]


def run_all(backend: Backend, jobs: Sequence[tuple[str | None, TaskSpec]],
            on_done: Callable[[int, int], None] | None = None) -> list[EvalResult]:
    """``jobs[i]``'s result at index i; ``on_done(finished, total)`` after each one. Faults are statuses."""
    results: dict[int, EvalResult] = {}
    pending = list(reversed(range(len(jobs))))
    cap = backend.capacity() * backend.depth
    while len(results) < len(jobs):
        while pending and backend.running() < cap:
            i = pending.pop()
            backend.submit(i, *jobs[i])
        for done in backend.wait(1.0):
            results[done.cid] = done.result
            if on_done is not None:
                on_done(len(results), len(jobs))
    return [results[i] for i in range(len(jobs))]
