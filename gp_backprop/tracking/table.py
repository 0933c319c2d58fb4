"""A table that is not a search (such as the FTPROP-MB baselines) as MLflow runs: a parent with the settings and
files, one child per row."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gp_backprop.tracking.store import PARAM_MAX, client

__all__ = ["log_table"]


def log_table(uri: str, experiment: str, run_name: str, params: dict[str, Any], rows: Sequence[dict[str, Any]],
              row_name: str, files: Sequence[Path]) -> str:
    """A parent run holding ``params`` and ``files``, and one child per row: its strings as params, its numbers as
    metrics (lists as stepped metrics). For tables that are not a search, such as the FTPROP-MB baselines."""
    from mlflow.entities import Metric, Param

    mc = client(uri)
    exp = mc.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else mc.create_experiment(experiment)
    parent = mc.create_run(exp_id, run_name=run_name, tags={"gp.kind": "table"})
    pid = parent.info.run_id
    mc.log_batch(pid, params=[Param(k, str(v)[:PARAM_MAX]) for k, v in params.items()])
    for row in rows:
        child = mc.create_run(exp_id, run_name=str(row[row_name]), tags={"mlflow.parentRunId": pid})
        metrics, strings = [], []
        for k, v in row.items():
            if isinstance(v, (list, tuple)):
                metrics += [Metric(k, float(x), 0, i) for i, x in enumerate(v)]
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics.append(Metric(k, float(v), 0, 0))
            else:
                strings.append(Param(k, str(v)[:PARAM_MAX]))
        mc.log_batch(child.info.run_id, metrics=metrics, params=strings)
        mc.set_terminated(child.info.run_id)
    for f in files:
        mc.log_artifact(pid, str(f))
    mc.set_terminated(pid)
    return pid
