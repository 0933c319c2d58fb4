"""Reading a finished search back from MLflow: its parent run, its candidates and its summary rows. Everything
``report`` and the funnel show comes from these records, so a search folder is not needed."""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import primitives as P

from gp_backprop.render import Row

__all__ = ["RecordError", "find_search", "children", "candidates", "rank_key", "search_rows"]

PAGE = 5000


class RecordError(ValueError):
    """The tracking store has no such search; the message says what exists and where to look."""


def find_search(mc: Any, search: str) -> Any:
    """The search's parent run, by run id, or the newest search of the experiment named ``search``, or else the
    newest search named ``search`` in any experiment (a campaign's searches share the campaign's)."""
    from mlflow.exceptions import MlflowException
    try:
        run = mc.get_run(search)
        if run.data.tags.get("gp.kind") == "search":
            return run
        raise RecordError(f"run {search} is not a search's parent run (tag gp.kind={run.data.tags.get('gp.kind')!r})")
    except MlflowException:
        pass
    exp = mc.get_experiment_by_name(search)
    runs = [] if exp is None else mc.search_runs([exp.experiment_id], "tags.`gp.kind` = 'search'",
                                                 order_by=["attributes.start_time DESC"], max_results=1)
    if not runs and re.fullmatch(r"[A-Za-z0-9._-]+", search):   # a search name, safe inside the filter's quotes
        ids = [e.experiment_id for e in mc.search_experiments()]
        runs = mc.search_runs(ids, f"tags.`gp.kind` = 'search' and params.name = '{search}'",
                              order_by=["attributes.start_time DESC"], max_results=1) if ids else []
    if not runs:
        names = sorted(e.name for e in mc.search_experiments())
        raise RecordError(f"no search run or experiment named {search!r} in {mc.tracking_uri}; experiments there: "
                          f"{', '.join(names) or 'none'} (run ids are in the search's summary and the MLflow UI)")
    return runs[0]


def children(mc: Any, run: Any, extra: str = "", order: Sequence[str] = ()) -> list[Any]:
    """Every child run of ``run`` matching the filter ``extra``, in ``order``, over all pages."""
    filt = f"tags.mlflow.parentRunId = '{run.info.run_id}'" + (f" and {extra}" if extra else "")
    out, token = [], None
    while True:
        page = mc.search_runs([run.info.experiment_id], filt, order_by=list(order), max_results=PAGE,
                              page_token=token)
        out += list(page)
        token = page.token
        if not token:
            return out


def evaluation(r: Any) -> int:
    """A child run's evaluation number (a metric; a param in stores written before issue 14)."""
    return int(r.data.metrics.get("evaluation") or r.data.params.get("evaluation", 0))


def candidates(mc: Any, run: Any) -> list[Any]:
    """Every trained candidate of a search, in evaluation order."""
    kids = children(mc, run, "params.status != ''")
    return sorted(kids, key=evaluation)


def rank_key(r: Any) -> tuple[float, float, int, int]:
    """A child run's place in the search's ranking, as the search itself ranked it (``Entry.rank_key``): fitness,
    then lower validation loss, then the smaller equation, then the earlier evaluation."""
    m, p = r.data.metrics, r.data.params
    return (-m.get("fitness", 0.0), m.get("val_loss", math.inf), int(p.get("size", 0)), evaluation(r))


def search_rows(mc: Any, run: Any, top: int) -> tuple[list[Any], Any, list[float], dict[str, int]]:
    """From a search's child runs alone: its top ``top`` rows, the reference seed's row, the fitness of every
    evaluation in order (for the progress plot) and the count of each status."""
    kids = candidates(mc, run)
    fitness = [r.data.metrics.get("fitness", 0.0) for r in kids]
    statuses = dict(Counter(r.data.params["status"] for r in kids))
    ranked = sorted(kids, key=rank_key)

    def row(rank: int, r: Any) -> Row:
        p, m = r.data.params, r.data.metrics
        latex = p.get("latex") or P.latex(P.parse(p["equation"], P.default_pset(True)))
        return Row(rank, m.get("val_acc", 0.0), m.get("test_acc", 0.0), p["status"], p["equation"], latex,
                   p["key"], evaluation(r), 1, m.get("fitness", 0.0), m.get("fitness_std", 0.0),
                   int(m.get("seeds", 1)), m.get("lr", 0.0))

    ref = next(((i + 1, r) for i, r in enumerate(ranked) if r.data.params.get("origin") == "reference"), None)
    return [row(i + 1, r) for i, r in enumerate(ranked[:top])], (row(*ref) if ref else None), fitness, statuses
