"""Several searches as one pool for the funnel: their candidates compete as one ranking, so the finalists are the
top distinct functions over all of them (``records.finalists`` of the list). A ranking by fitness means something
only across searches of one task, search space and fitness protocol: anything else is refused."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gp_backprop.tracking.reader import RecordError, find_search

__all__ = ["find_searches", "check_pool"]

# The settings pooled searches must share: what trains a candidate and what its fitness means. The controller's
# seed, budget and workers may differ (that is the point of several searches).
SHARED = ("task.", "fitness.", "space.hard_threshold", "space.reference", "evaluation.function")


def find_searches(mc: Any, spec: str | Sequence[str]) -> list[Any]:
    """The searches ``spec`` names (run ids or names, a list or comma-separated text), checked to be poolable."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names = [n for n in names if n]
    if not names:
        raise RecordError("no search named; give a search's run id or name, or several separated by commas")
    runs = [find_search(mc, n) for n in names]
    ids = [r.info.run_id for r in runs]
    twice = next((n for n, i in zip(names, ids) if ids.count(i) > 1), None)
    if twice is not None:
        raise RecordError(f"search {twice!r} is named twice (run {ids[names.index(twice)]}); name each search once")
    check_pool(runs)
    return runs


def check_pool(runs: Sequence[Any]) -> None:
    """Raise ``RecordError`` naming the first setting two of ``runs`` differ in (of those in ``SHARED``)."""
    first = runs[0].data.params
    for run in runs[1:]:
        params = run.data.params
        for key in sorted(set(first) | set(params)):
            if key.startswith(SHARED) and first.get(key) != params.get(key):
                raise RecordError(f"searches {runs[0].info.run_name!r} and {run.info.run_name!r} differ in {key} "
                                  f"({first.get(key)!r} vs {params.get(key)!r}); pool only searches of one task, "
                                  "search space and fitness")
