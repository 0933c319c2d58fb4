"""CI's check that a search's results reached MLflow: reads a sqlite store back with MLflow's own client and checks
the experiment, its parent run and one whole child run per evaluation.

    python .ci/check_search_store.py mlruns/mlflow.db --experiment mnist1d --children 8

Exit 0 with one summary line; 1 with the first thing missing; 2 for bad arguments (no such store file).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

EXPERIMENT_KIND = "custom_model_development"   # what gp_backprop.tracking tags a search's experiment with


class Missing(Exception):
    """Something the search should have written to MLflow is not there."""


def check(db: Path, experiment: str, n: int) -> str:
    """The summary line when the store holds the search ``experiment`` with ``n`` whole child runs; else Missing."""
    from mlflow import MlflowClient   # seconds to import: after the arguments are checked

    logging.getLogger("mlflow").setLevel(logging.ERROR)   # no migration chatter in CI's log
    mc = MlflowClient(f"sqlite:///{db.resolve()}")
    exp = mc.get_experiment_by_name(experiment)
    if exp is None:
        raise Missing(f"no experiment {experiment!r} (have: {[e.name for e in mc.search_experiments()]})")
    if exp.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND:
        raise Missing(f"experiment tag mlflow.experimentKind is {exp.tags.get('mlflow.experimentKind')!r}, "
                      f"not {EXPERIMENT_KIND!r}")
    parents = mc.search_runs([exp.experiment_id], "tags.`gp.kind` = 'search'")
    if len(parents) != 1:
        raise Missing(f"{len(parents)} search parent runs in {experiment!r}, expected 1")
    parent = parents[0]
    if parent.info.status != "FINISHED" or parent.info.run_name != f"search {experiment}":
        raise Missing(f"parent run {parent.info.run_name!r} is {parent.info.status}, expected 'search {experiment}' "
                      "FINISHED")
    kids = mc.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=1000)
    evaluations = sorted(int(k.data.metrics.get("evaluation", 0)) for k in kids)
    if evaluations != list(range(1, n + 1)):
        raise Missing(f"child runs' evaluations are {evaluations}, expected 1..{n}")
    if any("status" not in k.data.params or "fitness" not in k.data.metrics for k in kids):
        raise Missing("a child run lacks its status param or its fitness metric")
    if sum(k.data.tags.get("gp.role") == "reference" for k in kids) != 1:
        raise Missing("no child run is the reference (tag gp.role = reference)")
    statuses = Counter(k.data.params["status"] for k in kids)
    return (f"MLflow has the search: experiment {experiment!r} (id {exp.experiment_id}), parent run "
            f"{parent.info.run_id} FINISHED, {len(kids)} child runs ("
            + ", ".join(f"{s} {c}" for s, c in sorted(statuses.items())) + ")")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="check_search_store", description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path, help="the sqlite file of the store (e.g. mlruns/mlflow.db)")
    ap.add_argument("--experiment", default="mnist1d", help="the search's --name")
    ap.add_argument("--children", type=int, required=True, help="the search's --max-evals: child runs expected")
    args = ap.parse_args(argv)
    if not args.db.is_file():
        print(f"check_search_store: error: no store at {args.db}; run the search in that folder first "
              "(its default store is mlruns/mlflow.db)", file=sys.stderr)
        return 2
    try:
        print(check(args.db, args.experiment, args.children))
    except Missing as exc:
        print(f"check_search_store: the search's results did not reach MLflow: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
