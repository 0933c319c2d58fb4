"""Does the fitness protocol stop a rule from winning by its step size? Backprop rescaled (scale_0.5(g), scale_2(g),
scale_10(g)) is scored exactly as the search scores a top-N candidate (the lr grid around the tuned lr, then extra
seeds at the chosen lr) and compared with backprop itself, on the same seeds.

    python benchmarks/rescaled_backprop.py [--preset default|mnist1d] [--workers 2]

A rescaling applied at every layer compounds (layer i's value is scaled once per layer above it), so it is a per-layer
step size, which a global lr grid cannot undo exactly: the printout says how much of that is left.
"""
from __future__ import annotations

import argparse
import time

from gp_backprop.config import build
from gp_backprop.funnel.stats import paired_t
from gp_backprop.parallel import make_backend
from gp_backprop.presets import PRESETS
from gp_backprop.search.scoring import score_rules
from gp_backprop.tuning import tune

RULES = ["left(g, g)", "scale_0.5(g)", "scale_2(g)", "scale_10(g)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cfg = build([("preset", PRESETS[args.preset])])
    f, task = cfg.fitness, cfg.task
    backend = make_backend("loky", cfg.evaluation.function, task, workers=args.workers)
    backend.start()
    t0 = time.monotonic()
    try:
        table = tune("left(g, g)", task, backend, f.tune_points, f.tune_factor, f.tune_seeds)
        print(f"{args.preset}: {task.dataset}, {task.model.arch} {task.model.widths}, {task.epochs} epochs; "
              f"reference tuned on {f.tune_points} lrs x {f.tune_seeds} seeds:\n{table.table()}\n")
        lr = table.best.lr
        scores = score_rules(RULES, task, lr, f.lr_grid, f.extra_seeds, backend)
    finally:
        backend.close()
    ref = scores[0]
    print(f"each rule: grid {', '.join(f'{lr * x:g}' for x in f.lr_grid)}, then {f.extra_seeds} more seeds at the lr "
          "it chose; validation accuracy on the same seeds as the reference")
    print(f"{'rule':<14} {'lr':>7}  {'mean ± std (n)':>22}  {'vs reference':>12}  {'paired p':>8}")
    for text, s in zip(RULES, scores):
        accs = list(s.seed_accs)
        line = f"{text:<14} {s.score.lr:7.4g}  {s.score.mean:.4f} ± {s.score.std:.4f} ({s.score.n})"
        if s is not ref and len(accs) == len(ref.seed_accs) >= 2:
            diff, p = paired_t(accs, list(ref.seed_accs))
            line += f"  {diff:+12.4f}  {p:8.3f}"
        print(line)
    print(f"\n({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
