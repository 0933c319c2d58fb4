"""Reading a finished search back from MLflow, and writing the funnel's runs: the only MLflow code of the funnel
and of ``report``. Everything they show comes from these records, so a search folder is not needed."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import primitives as P

from gp_backprop.funnel import Cell, Finalist, Summary

PAGE = 5000


class RecordError(ValueError):
    """The tracking store has no such search; the message says what exists and where to look."""


def client(uri: str) -> Any:
    from mlflow import MlflowClient
    return MlflowClient(tracking_uri=uri)


def find_search(mc: Any, search: str) -> Any:
    """The search's parent run, by run id, or the newest search of the experiment named ``search``."""
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
    if not runs:
        names = sorted(e.name for e in mc.search_experiments())
        raise RecordError(f"no search run or experiment named {search!r} in {mc.tracking_uri}; experiments there: "
                          f"{', '.join(names) or 'none'} (run ids are in the search's summary and the MLflow UI)")
    return runs[0]


def _children(mc: Any, run: Any, extra: str = "", order: Sequence[str] = ()) -> list[Any]:
    filt = f"tags.mlflow.parentRunId = '{run.info.run_id}'" + (f" and {extra}" if extra else "")
    out, token = [], None
    while True:
        page = mc.search_runs([run.info.experiment_id], filt, order_by=list(order), max_results=PAGE,
                              page_token=token)
        out += list(page)
        token = page.token
        if not token:
            return out


def candidates(mc: Any, run: Any) -> list[Any]:
    """Every trained candidate of a search, in evaluation order."""
    kids = _children(mc, run, "params.status != ''")
    return sorted(kids, key=lambda r: int(r.data.params.get("evaluation", "0")))


def _finalist(r: Any, baseline: bool = False) -> Finalist:
    p = r.data.params
    return Finalist(p["equation"], p.get("latex", ""), p["key"], r.data.metrics.get("fitness", float("nan")),
                    r.info.run_id, baseline)


def finalists(mc: Any, run: Any, top: int) -> tuple[list[Finalist], Finalist]:
    """The ``top`` best distinct equations by search fitness (status ok), and the reference seed as the baseline."""
    name = run.data.params.get("space.reference", "backprop")
    text = P.format(P.parse(P.SEEDS[name]))
    ref_key = P.key(P.parse(text))
    kids = _children(mc, run, "params.status = 'ok'", ["metrics.fitness DESC"])
    chosen: list[Finalist] = []
    seen = {ref_key}
    baseline = Finalist(text, P.latex(P.parse(text)), ref_key, baseline=True)
    for r in kids:
        if r.data.params.get("key") == ref_key and baseline.run_id == "":
            baseline = _finalist(r, baseline=True)
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
    mc.log_batch(pid, params=[Param(k, str(v)[:6000]) for k, v in options.items()])
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
        mc.log_batch(child.info.run_id, metrics=metrics, params=[Param(k, v[:6000]) for k, v in params.items()])
        mc.set_terminated(child.info.run_id)
    mc.log_artifacts(pid, str(folder))
    mc.set_terminated(pid)
    return pid


def read_funnel(mc: Any, search: Any) -> tuple[Any, list[Summary]] | None:
    """The newest funnel run of a search and its table entries, or None if the search has none."""
    funnels = _children(mc, search, "tags.`gp.kind` = 'funnel'", ["attributes.start_time DESC"])
    if not funnels:
        return None
    funnel = funnels[0]
    rows = []
    for r in sorted(_children(mc, funnel), key=lambda r: r.info.start_time):
        p = r.data.params
        f = Finalist(p["equation"], p.get("latex", ""), p["key"], float(p.get("search_fitness", "nan")),
                     baseline=p.get("baseline") == "True")
        rows.append(Summary(f, p["label"], r.data.metrics["test_acc_mean"], r.data.metrics["test_acc_std"]))
    return funnel, rows


def search_rows(mc: Any, run: Any, top: int) -> tuple[list[Any], Any, list[float], dict[str, int]]:
    """From a search's child runs alone: its top ``top`` rows, the reference seed's row, the fitness of every
    evaluation in order (for the progress plot) and the count of each status."""
    from gp_backprop.report import Row

    kids = candidates(mc, run)
    fitness = [r.data.metrics.get("fitness", 0.0) for r in kids]
    statuses: dict[str, int] = {}
    for r in kids:
        statuses[r.data.params["status"]] = statuses.get(r.data.params["status"], 0) + 1
    ranked = sorted(kids, key=lambda r: (-r.data.metrics.get("fitness", 0.0), int(r.data.params["evaluation"])))

    def row(rank: int, r: Any) -> Row:
        p, m = r.data.params, r.data.metrics
        return Row(rank, m.get("val_acc", 0.0), m.get("test_acc", 0.0), p["status"], p["equation"], p.get("latex", ""),
                   p["key"], int(p["evaluation"]), 1)

    ref = next(((i + 1, r) for i, r in enumerate(ranked) if r.data.params.get("origin") == "reference"), None)
    return [row(i + 1, r) for i, r in enumerate(ranked[:top])], (row(*ref) if ref else None), fitness, statuses


def log_table(uri: str, experiment: str, run_name: str, params: dict[str, Any], rows: Sequence[dict[str, Any]],
              row_name: str, files: Sequence[Path]) -> str:
    """A parent run holding ``params`` and ``files``, and one child per row: its strings as params, its numbers as
    metrics (lists as stepped metrics). For tables that are not a search, such as the FTPROP-MB baselines."""
    from mlflow.entities import Metric, Param

    from gp_backprop.tracking import _prepare_sqlite

    _prepare_sqlite(uri)
    mc = client(uri)
    exp = mc.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else mc.create_experiment(experiment)
    parent = mc.create_run(exp_id, run_name=run_name, tags={"gp.kind": "table"})
    pid = parent.info.run_id
    mc.log_batch(pid, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    for row in rows:
        child = mc.create_run(exp_id, run_name=str(row[row_name]), tags={"mlflow.parentRunId": pid})
        metrics, strings = [], []
        for k, v in row.items():
            if isinstance(v, (list, tuple)):
                metrics += [Metric(k, float(x), 0, i) for i, x in enumerate(v)]
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics.append(Metric(k, float(v), 0, 0))
            else:
                strings.append(Param(k, str(v)[:6000]))
        mc.log_batch(child.info.run_id, metrics=metrics, params=strings)
        mc.set_terminated(child.info.run_id)
    for f in files:
        mc.log_artifact(pid, str(f))
    mc.set_terminated(pid)
    return pid
