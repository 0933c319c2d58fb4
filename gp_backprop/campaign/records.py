"""The campaign in MLflow: one parent run in the campaign's experiment, under which its searches' parent runs and its
funnel and transfer runs nest (MLflow nests runs of one experiment by the tag ``mlflow.parentRunId``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gp_backprop.errors import first_line
from gp_backprop.tracking import PARAM_MAX, TrackingError, children, client
from gp_backprop.tracking.store import experiment

__all__ = ["open_run", "end_run", "clear_search", "clear_stage"]


def open_run(uri: str, artifacts: str, name: str, exp_name: str, run_id: str, plan: dict[str, str]) -> tuple[Any, Any]:
    """``(client, run)``: the campaign's run ``run_id`` reopened, or a new one in experiment ``exp_name`` with the
    plan as its params. A store that cannot be used is one ``TrackingError`` line."""
    from mlflow.entities import Param
    from mlflow.exceptions import MlflowException
    from mlflow.tracking.context.registry import resolve_tags

    try:
        mc = client(uri)
        if run_id and _alive(mc, run_id):
            mc.update_run(run_id, status="RUNNING")
            return mc, mc.get_run(run_id)
        exp_id = experiment(mc, exp_name, uri, artifacts)
        provenance = {k: v for k, v in resolve_tags().items() if k.startswith(("mlflow.user", "mlflow.source"))}
        run = mc.create_run(exp_id, run_name=f"campaign {name}",
                            tags={**provenance, "gp.kind": "campaign",
                                  "mlflow.note.content": f"Campaign `{name}`: running."})
        items = [Param(k, v[:PARAM_MAX]) for k, v in plan.items()]
        for i in range(0, len(items), 100):   # log_batch takes at most 100 params
            mc.log_batch(run.info.run_id, params=items[i:i + 100])
        return mc, mc.get_run(run.info.run_id)
    except (MlflowException, OSError) as exc:
        raise TrackingError(f"cannot use the MLflow store at {uri}: {first_line(exc)[:300]}; check "
                            "search.tracking.uri (is the server running?)") from exc


def _alive(mc: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException
    try:
        return mc.get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


def clear_stage(mc: Any, run: Any, stage: str) -> None:
    """Delete what a re-test stage stopped before finishing left under the campaign's run (its funnel run and that
    run's cells), so the stage is logged once."""
    _delete(mc, run, f"tags.`gp.kind` = 'funnel' and params.stage = '{stage}'")


def clear_search(mc: Any, run: Any, name: str) -> None:
    """Delete the parent run (and children) of search ``name`` under the campaign's run, before it starts afresh:
    a search killed before its first checkpoint (while tuning its reference) left a run no checkpoint knows."""
    _delete(mc, run, f"tags.`gp.kind` = 'search' and params.name = '{name}'")


def _delete(mc: Any, run: Any, filt: str) -> None:
    for r in children(mc, run, filt):
        for child in children(mc, r):
            mc.delete_run(child.info.run_id)
        mc.delete_run(r.info.run_id)


def end_run(mc: Any, run: Any, status: str, note: str = "", folder: Path | None = None) -> None:
    """End the campaign's run with ``status``, its description ``note`` and the files of ``folder`` as artifacts."""
    rid = run.info.run_id
    if note:
        mc.set_tag(rid, "mlflow.note.content", note)
    if folder is not None:
        mc.log_artifacts(rid, str(folder))
    mc.set_terminated(rid, status)
