"""The search's reference line at its best: before the first candidate, the reference rule's learning rate is tuned
on validation (``gp_backprop.tuning``), and the winner becomes the lr every candidate's grid is centred on.

A resumed search takes the lr from its checkpoint; the table is cached per task, so a new search of the same task
(and the funnel) reuses it.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import primitives as P

from gp_backprop.config import SearchConfig
from gp_backprop.parallel import Backend
from gp_backprop.tuning import tune_cached

__all__ = ["tuned_lr", "tuning_folder"]


def tuning_folder(cfg: SearchConfig) -> Path:
    """Where tuning tables are cached: ``tuning/`` beside the searches' folder (``mlruns/tuning``)."""
    return Path(cfg.tracking.checkpoint_dir).parent / "tuning"


def tuned_lr(cfg: SearchConfig, backend: Backend, snapshot: dict[str, Any] | None,
             tracker: Any) -> tuple[float, dict[str, Any] | None]:
    """The lr candidates are centred on, and the tuning table (as a dict) it came from, or None with --no-tune."""
    if snapshot is not None and "lr" in snapshot:
        return snapshot["lr"], snapshot.get("tuning")
    f = cfg.fitness
    if not f.tune:
        return cfg.task.lr, None
    rule = P.format(P.parse(P.SEEDS[cfg.space.reference], P.default_pset(cfg.space.hard_threshold)))
    total = f.tune_points * f.tune_seeds
    out = sys.stdout
    print(f"Tuning the reference's lr ({cfg.space.reference}: {rule}) on validation: {f.tune_points} lrs around "
          f"{cfg.task.lr:g}, x{f.tune_factor:g} apart, {f.tune_seeds} seeds each ({total} trainings)", file=out,
          flush=True)
    table, cached = tune_cached(tuning_folder(cfg), rule, cfg.task, backend, f.tune_points, f.tune_factor,
                                f.tune_seeds)
    print(("(from the cache) " if cached else "") + table.table(), file=out, flush=True)
    best = table.best.lr
    walk = f" and walks x{f.lr_step:g} outward while its best is at an edge (up to x{f.lr_step ** f.lr_reach:g} " \
        "either way)" if f.lr_reach else ""
    print(f"The search's lr: {best:g} (was {cfg.task.lr:g}); each candidate starts at "
          f"{', '.join(f'{best * x:g}' for x in f.lr_grid)}{walk}, and keeps its best\n", file=out, flush=True)
    if tracker is not None:
        tracker.note({"fitness.tuned_lr": f"{best:g}"}, {"lr_tuning.txt": table.table() + "\n"})
    return best, table.to_dict()
