"""What a search's runs hold, as plain records: a trained candidate's child run (name, tags, params, metrics, status,
times) and the parent's params, with no MLflow call. The writer's sinks turn records into rows or API calls."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXPERIMENT_KIND", "FAILED", "RunRecord", "child_record", "child_run_id", "experiment_link",
           "relevant_params", "run_link", "run_name"]

FAILED = ("diverged", "error", "timeout", "crashed")   # shown as failed runs in the UI; "hurdle" is a finished run
_NAME_MAX = 250                                         # MLflow's limit on a run name
# The experiment tag ``mlflow.experimentKind``: MLflow's UI names this kind "Machine learning" (its GenAI kind is
# "genai_development"). MLflow 3.17's UI opens an experiment by its own "GenAI | Model training" switch, default
# GenAI, so the links below also carry that switch's URL parameter.
EXPERIMENT_KIND = "custom_model_development"
_WORKFLOW = "?workflowType=machine_learning"


@dataclass
class RunRecord:
    """One child run, ready to write. ``run_id`` is set by the sink that creates it when the store picks ids."""

    index: int                      # evaluation number, from 0
    key: str                        # the gp.key tag: one child run per candidate
    name: str
    start: int                      # epoch milliseconds
    end: int
    status: str                     # FINISHED | FAILED
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)   # key, value, timestamp, step
    run_id: str = ""
    fitness: float = 0.0


def child_run_id(parent_run_id: str, key: str) -> str:
    """The run id a store that takes ids from us gives a candidate: the same on every retry and every resume, so a
    candidate written twice collides instead of appearing twice."""
    return uuid.uuid5(uuid.UUID(parent_run_id), key).hex


def run_link(experiment_id: str, run_id: str) -> str:
    """The MLflow UI's address of a run, relative to the UI's root (works in a run's markdown description)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}{_WORKFLOW}"


def experiment_link(experiment_id: str) -> str:
    """The MLflow UI's address of an experiment's runs table, relative to the UI's root."""
    return f"#/experiments/{experiment_id}/runs{_WORKFLOW}"


def status_mark(result: Any) -> str:
    """What a run name says of a training that did not end normally: ``[hurdle@4] `` for one stopped at epoch 4 by
    a hurdle or the screening, ``[diverged] `` and so on for the failed ones; nothing for ``ok``."""
    if result.status == "ok":
        return ""
    if result.status == "hurdle" and result.val_curve:
        return f"[hurdle@{len(result.val_curve)}] "
    return f"[{result.status}] "


def run_name(e: Any, reference_name: str) -> str:
    """``#<evaluation> <equation>``, with the status mark of a run that did not train in full (``#7 [hurdle@4]
    add(g, g)``); the reference seed's run is ``<seed> (reference)``."""
    if e.cand.origin == "reference":
        return f"{reference_name} (reference)"[:_NAME_MAX]
    return f"#{e.index + 1} {status_mark(e.result)}{e.cand.text}"[:_NAME_MAX]


def child_record(e: Any, parent_run_id: str, experiment_id: str, reference_name: str, provenance: dict[str, str],
                 parent: tuple[str, str] = ("", "")) -> RunRecord:
    """The child run of population entry ``e`` (a ``Trained``). ``parent`` is the parent candidate's (run id,
    run name), when it has a run."""
    r, c = e.result, e.cand
    end = int(e.at * 1000)
    start = end - int(e.busy * 1000)
    reference = c.origin == "reference"
    name = run_name(e, reference_name)
    tags = {**provenance, "mlflow.parentRunId": parent_run_id, "gp.key": c.key, "gp.status": r.status,
            "gp.role": "reference" if reference else "candidate"}
    if parent[0]:
        tags["gp.parent_run_id"] = parent[0]
        tags["mlflow.note.content"] = (f"Mutant of [{parent[1]}]({run_link(experiment_id, parent[0])})"
                                       + (f": `{c.mutation}`" if c.mutation else ""))
    params = {"equation": c.text, "key": c.key, "origin": c.origin, "status": r.status, "size": str(c.size)}
    if c.mutation:
        params["mutation"] = c.mutation
    if e.score is not None and e.score.tried:   # the lr search: each lr tried and its accuracy, in order
        params["lrs_tried"] = " ".join(f"{lr:g}:{acc:.4f}" for lr, acc in e.score.tried)
    if r.message:
        params["message"] = r.message
    curve = r.val_curve or (r.val_acc,)
    metrics = [("val_acc", round(v, 4), end, step) for step, v in enumerate(curve, 1 if r.val_curve else 0)]
    metrics += [("fitness", round(e.fitness, 4), end, 0), ("test_acc", round(r.test_acc, 4), end, 0),
                ("wall_time", round(r.wall_time or e.busy, 3), end, 0), ("evaluation", float(e.index + 1), end, 0)]
    if e.score is not None:  # the mean over its seeds at the lr it chose (README, "The protocol")
        metrics += [("fitness_std", round(e.score.std, 4), end, 0), ("seeds", float(e.score.n), end, 0),
                    ("lr", e.score.lr, end, 0)]
        if math.isfinite(e.score.val_loss):
            metrics.append(("val_loss", round(e.score.val_loss, 4), end, 0))
    return RunRecord(e.index, c.key, name, start, end, "FAILED" if r.status in FAILED else "FINISHED",
                     tags, params, metrics, fitness=e.fitness)


# Settings that only one choice of another setting reads: logged only with that choice, so an MLP search does not
# show a WRN's depth and width.
_ONLY_WITH = {
    "task.model.widths": ("task.model.arch", ("mlp",)),
    "task.model.depth": ("task.model.arch", ("wrn",)),
    "task.model.width": ("task.model.arch", ("wrn",)),
    "task.momentum": ("task.optimizer", ("momentum",)),
    "task.lr_decay_epochs": ("task.schedule", ("step",)),
    "task.lr_decay": ("task.schedule", ("step",)),
    "space.tournament_size": ("space.selection", ("tournament",)),
    "parallel.scheduler": ("parallel.backend", ("dask",)),
}


def relevant_params(params: dict[str, str]) -> dict[str, str]:
    """``params`` without the settings the chosen architecture, optimizer, schedule and selection do not read."""
    out = {}
    for k, v in params.items():
        rule = _ONLY_WITH.get(k)
        if rule is not None and params.get(rule[0]) not in rule[1]:
            continue
        if k == "task.hurdle_acc" and params.get("task.hurdle_epoch") == "0":
            continue
        out[k] = v
    return out
