"""The end-of-search summary printed by ``evolve``: counts, the top equations against the reference seed, and where
the search's records are."""
from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from evaluators.task import STATUSES

from gp_backprop.render import duration, summary_table
from gp_backprop.search.hall_of_fame import hall_of_fame
from gp_backprop.tracking.runs import experiment_link, run_link

__all__ = ["print_summary"]


def print_summary(cfg: Any, outcome: Any, file: Any = None) -> None:
    """The end-of-search report: counts, the top equations against the reference seed, and where to look."""
    file = file if file is not None else sys.stdout
    ctl = outcome.controller
    statuses = Counter(e.result.status for e in ctl.population)
    hits = ctl.cache_hits
    print(f"\n{cfg.name}: {outcome.status} after {len(ctl.population)} evaluations in {duration(outcome.elapsed)}; "
          f"this session {outcome.evals_per_min:.0f} evals/min on {outcome.workers} workers, "
          f"{outcome.stats.get('trainings', 0):.0f} trainings ({outcome.stats.get('epochs', 0):.0f} epochs), "
          f"utilization {outcome.utilization:.2f}", file=file)
    print(f"cache hits: {hits} of {ctl.proposals} proposals ({hits / max(1, ctl.proposals):.1%}): "
          f"{hits - ctl.function_hits} same text (primitives.key), {ctl.function_hits} same function under another "
          "text (primitives.function_key)", file=file)
    print("statuses: " + ", ".join(f"{s} {statuses.get(s, 0)}" for s in STATUSES), file=file)
    if ctl.inflight:
        kept = (f" (not the {outcome.held} that finished before an older one: their results are kept)"
                if outcome.held else "")
        print(f"{len(ctl.inflight)} candidates were in flight; --resume trains them{kept}", file=file)
    rows, ref = hall_of_fame(ctl, min(cfg.tracking.hall_of_fame, 10))
    print("\n" + summary_table(rows, ref, cfg.space.reference), file=file)
    if cfg.tracking.enabled and outcome.run_id:
        waiting = (f"; {outcome.runs_waiting} wait for --resume (the store did not answer)"
                   if outcome.runs_waiting else "")
        print(f"MLflow: experiment {cfg.tracking.experiment or cfg.name!r}, parent run {outcome.run_id}: {outcome.runs_tracked} of "
              f"{len(ctl.population)} child runs reached MLflow{waiting}; artifacts hall_of_fame.png, "
              "hall_of_fame.csv and fitness.png", file=file)
        if cfg.tracking.uri.startswith(("http://", "https://")):
            print(f"  open {cfg.tracking.uri.rstrip('/')}/{run_link(outcome.experiment_id, outcome.run_id)}",
                  file=file)
        else:
            print(f"  mlflow ui --backend-store-uri {cfg.tracking.uri} --host 127.0.0.1   "
                  f"# then open http://127.0.0.1:5000/{experiment_link(outcome.experiment_id)}", file=file)
    print(f"Checkpoint: {cfg.run_dir / 'checkpoint.json'} (continue with --resume --name {cfg.name}"
          f"{'' if outcome.status in ('interrupted', 'write error') else ' --max-evals N'})", file=file)
