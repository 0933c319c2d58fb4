"""The fitness's controls (issue 24): a rule known to be better must score higher than backprop, and a change that
must not matter (the starting lr, a constant rescaling of g) must not move a score beyond seed noise.

    PYTHONPATH=. python benchmarks/controls.py [--preset default] [--workers 2]

Each control rule trains once on a log ladder of learning rates around the search's tuned lr (``LADDER`` factors of
2 either way, 3 seeds: the task seed and the two extra seeds a promoted candidate gets), with the search's
divergence stops and without its hurdle, every validation curve kept. From that one recording:

- the truth: each rule at its own tuned lr (the ladder point with the best mean validation accuracy over the 3
  seeds), which every fitness design approximates;
- each design of the step-size-free fitness, replayed on the recorded curves as the search would run it (the
  search's hurdle applied to the curves): the lrs it tries on the task seed, the one it keeps, and the score a
  promoted candidate gets there (mean over the 3 seeds), with its cost in training epochs;
- the search's own scorer run for real on the same rules (``score_rules``), which must equal its replay, and for
  backprop started 16x below and 16x above the tuned lr (the negative control, as ``--no-tune --set task.lr=...``).

It ends with the verdicts: positive (g/||g||_F above backprop by >= 1 point), negative (shifted starts within
noise of the tuned start; rescaled backprop not above backprop beyond noise, judged against the truth).
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evaluators import EvalResult, TaskSpec

from gp_backprop.config import build
from gp_backprop.parallel import make_backend
from gp_backprop.parallel.batch import run_all
from gp_backprop.presets import PRESETS
from gp_backprop.search.lr_walk import LrWalk
from gp_backprop.search.scoring import lr_walk, score_rules
from gp_backprop.search.reference import tuning_folder
from gp_backprop.tuning import tune_cached, tuning_seeds

RULES = {"backprop": "left(g, g)", "g/||g||_F": "left(norm_fro(g), g)", "sgn(g)": "left(sgn(g), g)",
         "scale_0.1(g)": "scale_0.1(g)", "scale_10(g)": "scale_10(g)"}
LADDER = 6            # factors 2^-6 .. 2^6 of the tuned lr, every rule, every seed
SHIFT = 4             # the negative control starts backprop at 2^-4 and 2^4 of the tuned lr (lr/16, lr x 16)
RUNGS = (1, 2, 5, 10)  # successive halving: at each, the better half of the lrs still training goes on


@dataclass
class Recording:
    """Every training of the ladder: (rule text, lr factor, seed) -> result; ``lr`` is the tuned lr."""

    task: TaskSpec
    lr: float
    seeds: list[int]
    results: dict[tuple[str, float, int], EvalResult]

    def at(self, text: str, factor: float, seed: int | None = None) -> EvalResult:
        """The training as the search runs it: the recorded curve, stopped where the search's hurdle would."""
        r = self.results[(text, factor, self.seeds[0] if seed is None else seed)]
        t = self.task
        if seed is None and r.status == "ok" and t.hurdle_epoch and len(r.val_curve) >= t.hurdle_epoch \
                and r.val_curve[t.hurdle_epoch - 1] <= t.hurdle_acc:
            return EvalResult("hurdle", r.val_curve[t.hurdle_epoch - 1], val_curve=r.val_curve[:t.hurdle_epoch],
                              steps=r.steps, val_loss=r.val_loss)
        return r


def record(task: TaskSpec, lr: float, backend, factors: dict[str, list[float]]) -> Recording:
    seeds = tuning_seeds(task, 3)
    keys = [(text, f, s) for text, fs in factors.items() for f in fs for s in seeds]
    free = task.with_(hurdle_epoch=0)
    results = run_all(backend, [(text, free.with_(lr=lr * f, seed=s)) for text, f, s in keys])
    return Recording(task, lr, seeds, dict(zip(keys, results)))


def epochs(r: EvalResult, per_epoch: int) -> float:
    """Training epochs a result cost (a diverged one: its steps)."""
    return r.steps / per_epoch if r.status == "diverged" else float(len(r.val_curve))


@dataclass
class Outcome:
    factor: float                   # the lr factor the design keeps
    tried: list[float]              # the factors it trained on the task seed, in order
    cost: float                     # epochs of those trainings


def walk(rec: Recording, text: str, w: LrWalk, per_epoch: int, start: float = 1.0) -> Outcome:
    tried: list[tuple[float, EvalResult]] = []
    todo = w.start(start)
    while todo:
        tried += [(f, rec.at(text, f)) for f in todo]
        nxt = w.next(tried)
        todo = [] if nxt is None else [nxt]
    return Outcome(tried[w.best(tried)][0], [f for f, _ in tried], sum(epochs(r, per_epoch) for _, r in tried))


def halving(rec: Recording, text: str, per_epoch: int) -> Outcome:
    """Successive halving over the whole ladder trained as one batch: divergers leave at once, and at each of
    ``RUNGS`` the worse half of the lrs still training stops; the best final validation accuracy wins."""
    factors = [2.0 ** k for k in range(-LADDER, LADDER + 1)]
    results = {f: rec.at(text, f) for f in factors}
    alive = [f for f in factors if results[f].status != "diverged"]
    stopped_at = {f: math.inf for f in alive}
    for epoch in RUNGS:
        ranked = sorted((f for f in alive if len(results[f].val_curve) >= epoch),
                        key=lambda f: -results[f].val_curve[epoch - 1])
        for f in ranked[math.ceil(len(ranked) / 2):]:
            stopped_at[f] = epoch
        alive = ranked[:math.ceil(len(ranked) / 2)]
    cost = sum(min(epochs(results[f], per_epoch), stopped_at.get(f, 0.0)) for f in factors)
    cost += sum(epochs(results[f], per_epoch) for f in factors if results[f].status == "diverged")
    best = max(alive, key=lambda f: results[f].fitness) if alive else 1.0
    return Outcome(best, factors, cost)


def score(rec: Recording, text: str, factor: float) -> tuple[float, float]:
    """A promoted candidate's score at ``factor``: mean and std of validation accuracy over its lr search's training
    and the extra seeds' (trained in full)."""
    accs = [rec.at(text, factor).fitness] + [rec.at(text, factor, s).fitness for s in rec.seeds[1:]]
    return statistics.fmean(accs), statistics.stdev(accs)


def truth(rec: Recording, text: str) -> tuple[float, float, float]:
    """The rule at its own tuned lr on the ladder: (factor, mean, std) of full trainings over the 3 seeds."""
    factors = [2.0 ** k for k in range(-LADDER, LADDER + 1)]
    rows = [(statistics.fmean(accs := [rec.results[(text, f, s)].fitness for s in rec.seeds]),
             statistics.stdev(accs), f) for f in factors]
    mean, std, f = max(rows)
    return f, mean, std


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cfg = build([("preset", PRESETS[args.preset])])
    f, task = cfg.fitness, cfg.task
    backend = make_backend("loky", cfg.evaluation.function, task, workers=args.workers, members=cfg.parallel.chunk)
    backend.start()
    t0 = time.monotonic()
    ladder = [2.0 ** k for k in range(-LADDER, LADDER + 1)]
    shifted = [2.0 ** k for k in range(-LADDER - SHIFT, LADDER + SHIFT + 1)]
    try:
        table, _ = tune_cached(tuning_folder(cfg), RULES["backprop"], task, backend, f.tune_points, f.tune_factor,
                               f.tune_seeds)
        lr = table.best.lr
        rec = record(task, lr, backend, {text: shifted if name == "backprop" else ladder
                                         for name, text in RULES.items()})
        t_record = time.monotonic() - t0
        real = score_rules(list(RULES.values()), task, lr, lr_walk(f), f.extra_seeds, backend)
        # As --no-tune --set task.lr=...: the search's lr, and so the walk's start and reach, shifted
        real_shift = [score_rules([RULES["backprop"]], task, lr * 2.0 ** k, lr_walk(f), f.extra_seeds, backend)[0]
                      for k in (-SHIFT, SHIFT)]
    finally:
        backend.close()
    report(rec, cfg, real, real_shift, t_record, time.monotonic() - t0)


def report(rec: Recording, cfg, real, real_shift, t_record: float, total: float) -> None:
    task, f = cfg.task, cfg.fitness
    full = next(r for r in rec.results.values() if r.status == "ok" and len(r.val_curve) == task.epochs)
    per_epoch = full.steps // task.epochs
    designs: dict[str, Callable[[str], Outcome]] = {
        "bracket x1/2..x2 (before)": lambda t: walk(rec, t, LrWalk(f.lr_grid, f.lr_step, 0), per_epoch),
        f"walking bracket (reach 2^{f.lr_reach})": lambda t: walk(rec, t, lr_walk(f), per_epoch),
        f"successive halving ({2 * LADDER + 1} lrs)": lambda t: halving(rec, t, per_epoch),
        # A heritable lr at its best: the bracket starts at the lr a parent of the same function chose well
        "walking bracket from the rule's own lr (heritable lr)":
            lambda t: walk(rec, t, lr_walk(f), per_epoch, start=truth(rec, t)[0]),
    }
    print(f"{task.dataset}, {task.model.arch} {task.model.widths}, {task.epochs} epochs; tuned lr {rec.lr:g}; "
          f"recorded {len(rec.results)} trainings in {t_record:.0f} s ({total:.0f} s in all)\n")
    print("truth: each rule at its own tuned lr (best mean validation accuracy over seeds "
          f"{rec.seeds}, lrs {rec.lr:g} x 2^-{LADDER}..2^{LADDER})")
    base = truth(rec, RULES["backprop"])
    for name, text in RULES.items():
        fac, mean, std = truth(rec, text)
        print(f"  {name:<14} lr {rec.lr * fac:<8.4g} {mean:.4f} ± {std:.4f}   vs backprop {100 * (mean - base[1]):+6.2f}")
    scores: dict[str, dict[str, float]] = {}
    for design, run in designs.items():
        print(f"\n{design}: the lr kept on seed {rec.seeds[0]}, then the mean over the 3 seeds there")
        total_cost = 0.0
        for name, text in RULES.items():
            out = run(text)
            mean, std = score(rec, text, out.factor)
            scores.setdefault(design, {})[name] = mean
            total_cost += out.cost
            print(f"  {name:<14} lr {rec.lr * out.factor:<8.4g} {mean:.4f} ± {std:.4f}   vs backprop "
                  f"{100 * (mean - scores[design]['backprop']):+6.2f}   {len(out.tried):2d} lrs, "
                  f"{out.cost:5.1f} epochs")
        print(f"  lr search cost over these rules: {total_cost:.1f} epochs")
    chosen = f"walking bracket (reach 2^{f.lr_reach})"
    _verdicts(rec, scores[chosen], real, real_shift, per_epoch)


def _verdicts(rec: Recording, replayed: dict[str, float], real, real_shift, per_epoch: int) -> None:
    names = list(RULES)
    got = {n: r.score.mean for n, r in zip(names, real)}
    same = all(abs(got[n] - replayed[n]) < 1e-9 for n in names)
    print("\nthe search's scorer, run for real: " + ", ".join(f"{n} {got[n]:.4f}" for n in names)
          + f"  ({'equal to' if same else 'DIFFERENT FROM'} its replay)")
    bp = real[0].score
    noise = 2 * bp.std / math.sqrt(bp.n)
    print(f"noise: 2 standard errors of backprop's score over its {bp.n} seeds = {100 * noise:.2f} points")
    gain = got["g/||g||_F"] - got["backprop"]
    print(f"positive control: g/||g||_F - backprop = {100 * gain:+.2f} points (need >= +1.00): "
          f"{'PASS' if gain >= 0.01 else 'FAIL'}")
    for label, r in zip(("lr/16", "lr x 16"), real_shift):
        d = r.score.mean - bp.mean
        print(f"negative control: backprop started at {label} scores {r.score.mean:.4f} at lr {r.score.lr:g} "
              f"({100 * d:+.2f} points): {'PASS' if abs(d) <= noise else 'FAIL'}")
    base = truth(rec, RULES["backprop"])[1]
    for n in ("scale_0.1(g)", "scale_10(g)"):
        d, t = got[n] - got["backprop"], truth(rec, RULES[n])[1] - base
        verdict = "PASS" if d <= noise else "above backprop, as in the truth" if t > noise else "FAIL"
        print(f"negative control: {n} - backprop = {100 * d:+.2f} points (truth {100 * t:+.2f}): {verdict}")


if __name__ == "__main__":
    main()
