"""The funnel's records in MLflow: which finalists a search offers, and the funnel runs (one child per cell)
written under the search and read back by ``report``."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import primitives as P

from gp_backprop.funnel.plan import Cell, Finalist, Summary
from gp_backprop.tracking.reader import children
from gp_backprop.tracking.store import PARAM_MAX

__all__ = ["finalists", "log_funnel", "read_funnel"]


def _finalist(r: Any, baseline: bool = False, name: str = "") -> Finalist:
    p = r.data.params
    return Finalist(p["equation"], p.get("latex", ""), p["key"], r.data.metrics.get("fitness", float("nan")),
                    r.info.run_id, baseline, name)


def finalists(mc: Any, run: Any, top: int) -> tuple[list[Finalist], Finalist]:
    """The ``top`` best distinct equations by search fitness (status ok), and the reference seed as the baseline."""
    name = run.data.params.get("space.reference", "backprop")
    text = P.format(P.parse(P.SEEDS[name]))
    ref_key = P.key(P.parse(text))
    kids = children(mc, run, "params.status = 'ok'", ["metrics.fitness DESC"])
    chosen: list[Finalist] = []
    seen = {ref_key}
    baseline = Finalist(text, P.latex(P.parse(text)), ref_key, baseline=True, name=name)
    for r in kids:
        if r.data.params.get("key") == ref_key and baseline.run_id == "":
            baseline = _finalist(r, baseline=True, name=name)
        if r.data.params.get("key") in seen:
            continue
        seen.add(r.data.params["key"])
        if len(chosen) < top:
            chosen.append(_finalist(r))
    return chosen, baseline


def log_funnel(mc: Any, search: Any, cells: Sequence[Cell], options: dict[str, str], folder: Path) -> str:
    """A funnel run nested under the search's parent, one child per (equation, setup), and the table, CSV and
    learning-curve plots (everything in ``folder``) as its artifacts. Returns the funnel run's id."""
    from mlflow.entities import Metric, Param

    exp = search.info.experiment_id
    parent = mc.create_run(exp, run_name=f"funnel {options.get('setups', '')}",
                           tags={"mlflow.parentRunId": search.info.run_id, "gp.kind": "funnel"})
    pid = parent.info.run_id
    mc.log_batch(pid, params=[Param(k, str(v)[:PARAM_MAX]) for k, v in options.items()])
    for c in cells:
        child = mc.create_run(exp, run_name=f"{c.setup.label}: {c.finalist.equation}"[:250],
                              tags={"mlflow.parentRunId": pid, "gp.kind": "funnel-cell"})
        params = {"equation": c.finalist.equation, "latex": c.finalist.latex, "key": c.finalist.key,
                  "setup": c.setup.name, "optimizer": c.setup.optimizer, "label": c.setup.label,
                  "description": c.setup.description, "baseline": str(c.finalist.baseline),
                  "seeds": options.get("seeds", ""), "statuses": c.statuses(),
                  "search_fitness": f"{c.finalist.fitness}"}
        metrics = [Metric("test_acc_mean", c.mean, 0, 0), Metric("test_acc_std", c.std, 0, 0)]
        metrics += [Metric("test_acc_seed", a, 0, i) for i, a in enumerate(c.test_accs())]
        metrics += [Metric("val_acc", v, 0, e) for e, v in enumerate(c.val_curve(), 1)]
        mc.log_batch(child.info.run_id, metrics=metrics, params=[Param(k, v[:PARAM_MAX]) for k, v in params.items()])
        mc.set_terminated(child.info.run_id)
    mc.log_artifacts(pid, str(folder))
    mc.set_terminated(pid)
    return pid


def read_funnel(mc: Any, search: Any) -> tuple[Any, list[Summary]] | None:
    """The newest funnel run of a search and its table entries, or None if the search has none."""
    funnels = children(mc, search, "tags.`gp.kind` = 'funnel'", ["attributes.start_time DESC"])
    if not funnels:
        return None
    funnel = funnels[0]
    rows = []
    for r in sorted(children(mc, funnel), key=lambda r: r.info.start_time):
        p = r.data.params
        f = Finalist(p["equation"], p.get("latex", ""), p["key"], float(p.get("search_fitness", "nan")),
                     baseline=p.get("baseline") == "True")
        rows.append(Summary(f, p["label"], r.data.metrics["test_acc_mean"], r.data.metrics["test_acc_std"]))
    return funnel, rows
