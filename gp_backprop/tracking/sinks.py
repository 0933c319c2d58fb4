"""Where the writer's child runs go. A local database store takes a batch of runs as one transaction through MLflow's
SQLAlchemy tables (the rows ``create_run``, ``log_batch`` and ``set_terminated`` would write, a few milliseconds a
batch instead of ~20 ms a run); any other store (an ``mlflow server``) gets the same runs through ``MlflowClient``.

Either write is all or nothing for the caller: it raises, and the writer retries the same records, which keep their
run ids, so a retry never makes a second run of a candidate.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from gp_backprop.tracking.runs import RunRecord, child_run_id
from gp_backprop.tracking.store import PARAM_MAX

__all__ = ["ClientSink", "SqlSink", "make_sink"]

TAG_MAX = 8000       # MLflow's limit on a tag value
BUSY_MS = 2000       # how long a batch waits for another writer's lock before it fails and is retried later


def make_sink(client: Any, experiment_id: str, parent_run_id: str) -> "SqlSink | ClientSink":
    """The batch writer for a database store MLflow serves through SQLAlchemy, else the client one."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if isinstance(store, SqlAlchemyStore):
        return SqlSink(store, experiment_id, parent_run_id)
    return ClientSink(client, experiment_id)


def _metric_value(v: float) -> tuple[float, bool]:
    """(value, is_nan) as MLflow stores a metric: NaN as 0 with the flag, infinities at the float limits."""
    if math.isnan(v):
        return 0.0, True
    if math.isinf(v):
        return math.copysign(sys.float_info.max, v), False
    return v, False


class SqlSink:
    """One transaction per batch of child runs; run ids come from ``child_run_id``, so a batch already committed
    (its success lost on the way back) is recognised and not written again."""

    batch = 500

    def __init__(self, store: Any, experiment_id: str, parent_run_id: str) -> None:
        self.store, self.experiment_id, self.parent_run_id = store, experiment_id, parent_run_id
        self.artifact_location = store.get_experiment(experiment_id).artifact_location

    def assign(self, record: RunRecord) -> None:
        record.run_id = child_run_id(self.parent_run_id, record.key)

    def write(self, records: Sequence[RunRecord]) -> None:
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
        from mlflow.utils.uri import append_to_uri_path
        from sqlalchemy import insert, select, text

        with self.store.ManagedSessionMaker(read_only=False) as s:
            s.execute(text(f"PRAGMA busy_timeout = {BUSY_MS}"))
            ids = [r.run_id for r in records]
            have = set(s.scalars(select(SqlRun.run_uuid).where(SqlRun.run_uuid.in_(ids))))
            new = [r for r in records if r.run_id not in have]
            if not new:
                return
            runs, tags, params, metrics, latest = [], [], [], [], []
            for r in new:
                runs.append({"run_uuid": r.run_id, "name": r.name, "source_type": "UNKNOWN", "source_name": "",
                             "entry_point_name": "", "user_id": r.tags.get("mlflow.user", "unknown"),
                             "status": r.status, "start_time": r.start, "end_time": r.end, "deleted_time": None,
                             "source_version": "", "lifecycle_stage": "active",
                             "artifact_uri": append_to_uri_path(self.artifact_location, r.run_id, "artifacts"),
                             "experiment_id": int(self.experiment_id)})
                tags += [{"run_uuid": r.run_id, "key": k, "value": v[:TAG_MAX]}
                         for k, v in {**r.tags, "mlflow.runName": r.name}.items()]
                params += [{"run_uuid": r.run_id, "key": k, "value": v[:PARAM_MAX]} for k, v in r.params.items()]
                last: dict[str, dict[str, Any]] = {}
                for key, value, ts, step in r.metrics:
                    v, nan = _metric_value(value)
                    row = {"run_uuid": r.run_id, "key": key, "value": v, "timestamp": ts, "step": step, "is_nan": nan}
                    metrics.append(row)
                    if key not in last or (step, ts, v) > (last[key]["step"], last[key]["timestamp"], last[key]["value"]):
                        last[key] = row
                latest += list(last.values())
            for model, rows in ((SqlRun, runs), (SqlTag, tags), (SqlParam, params), (SqlMetric, metrics),
                                (SqlLatestMetric, latest)):
                if rows:
                    s.execute(insert(model.__table__), rows)

    def children(self, parent_run_id: str) -> list[tuple[str, str, str, bool]]:
        """(gp.key, run id, status, whole) of the parent's active child runs; whole: it has its evaluation."""
        from sqlalchemy import text

        query = text(
            "SELECT k.value, r.run_uuid, r.status, "
            "  EXISTS(SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = 'evaluation') "
            "  OR EXISTS(SELECT 1 FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = 'evaluation') "
            "FROM runs r JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = 'gp.key' "
            "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId' AND t.value = :parent "
            "WHERE r.lifecycle_stage = 'active'")
        with self.store.ManagedSessionMaker() as s:
            return [(key, rid, status, bool(whole)) for key, rid, status, whole in
                    s.execute(query, {"parent": parent_run_id})]


class ClientSink:
    """Through ``MlflowClient``, one run at a time (an HTTP store picks run ids itself). A run created before a
    failure keeps its id, and the retry goes on from its ``log_batch`` (which MLflow accepts again unchanged)."""

    batch = 1

    def __init__(self, client: Any, experiment_id: str) -> None:
        self.client, self.experiment_id = client, experiment_id

    def assign(self, record: RunRecord) -> None:
        pass  # the server picks the id in write()

    def write(self, records: Sequence[RunRecord]) -> None:
        from mlflow.entities import Metric, Param

        for r in records:
            if not r.run_id:
                tags = {k: v[:TAG_MAX] for k, v in r.tags.items()}
                r.run_id = self.client.create_run(self.experiment_id, start_time=r.start, run_name=r.name,
                                                  tags=tags).info.run_id
            params = [Param(k, v[:PARAM_MAX]) for k, v in r.params.items()]
            metrics = [Metric(k, v, ts, step) for k, v, ts, step in r.metrics]
            self.client.log_batch(r.run_id, metrics=metrics, params=params)
            self.client.set_terminated(r.run_id, r.status, r.end)

    def children(self, parent_run_id: str) -> list[tuple[str, str, str, bool]]:
        out, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                           max_results=1000, page_token=token)
            for r in page:
                if "gp.key" in r.data.tags:
                    whole = "evaluation" in r.data.metrics or "evaluation" in r.data.params
                    out.append((r.data.tags["gp.key"], r.info.run_id, r.info.status, whole))
            token = page.token
            if not token:
                return out
