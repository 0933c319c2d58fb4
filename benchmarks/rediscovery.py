"""Rediscovery (issue 24, item 3): does the default search, at its default budget, reach a rule that beats tuned
backprop on fresh seeds, and how soon? One row per design of the initial population, over several search seeds.

    PYTHONPATH=. python benchmarks/rediscovery.py [--designs random,backprop] [--seeds 1,2,3,4,5] [--out DIR]

For each design and search seed: the default search (``--preset default`` with the design's ``space.init``), then
the funnel's A1 on its top 10 distinct functions with ``--fresh`` fresh seeds, every row and the controls at their
own tuned lr (``funnel.rows``, ``tune_rows``, ``plan``, ``run``, ``compare``). A success is a row that beats tuned
backprop at Holm-corrected p < 0.05 over that table, a control the search found among its top functions included
(rediscovering ``g/||g||_F`` counts). CPU-minutes to the first such rule: when the search's first candidate of that
function came back, times the workers. Everything lands under ``--out`` (MLflow store, checkpoints, tuning cache),
so a rerun skips the searches and the tunings already done.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import primitives as P

from gp_backprop import funnel, tracking
from gp_backprop.config import build
from gp_backprop.parallel import make_backend
from gp_backprop.presets import PRESETS
from gp_backprop.search import run_search
from gp_backprop.search.checkpoint import RunFolder

DESIGNS = {   # the initial population: random equations (the paper), backprop and its mutants, all named seeds'
    "random": "random",
    "backprop": "seeds:backprop",
    "named": "seeds:backprop,fa,dfa,sign_symmetry",
}


def search(design: str, seed: int, out: Path, max_evals: int, workers: int):
    """The design's search with this seed, run or continued to its end; returns (config, outcome, wall seconds)."""
    cfg = build([("preset", PRESETS["default"]), ("bench", {
        "name": f"{design}-{seed}", "seed": seed, "space": {"init": DESIGNS[design]},
        "budget": {"max_evals": max_evals}, "parallel": {"workers": workers},
        "tracking": {"uri": f"sqlite:///{out}/mlflow.db", "artifacts": str(out / "artifacts"),
                     "checkpoint_dir": str(out / "searches")}})])
    start = time.monotonic()
    resume = RunFolder(cfg.run_dir).exists()
    outcome = run_search(cfg, resume=resume, progress=False)
    return cfg, outcome, time.monotonic() - start


def retest(cfg, outcome, out: Path, fresh: int, workers: int) -> list[tuple[funnel.Finalist, float, float]]:
    """The winners of the search's A1 funnel: (row, difference to tuned backprop, Holm p) for each row the search
    found that beats it at p < 0.05."""
    mc = tracking.client(cfg.tracking.uri)
    run = tracking.find_search(mc, outcome.run_id)
    task = cfg.task
    rows = funnel.rows(mc, run, 10)
    setups = funnel.setups(task, ["A1"], [task.optimizer], *funnel.input_info(task))
    backend = make_backend("loky", cfg.evaluation.function, task, workers=workers, members=cfg.parallel.chunk)
    backend.start()
    try:
        f = cfg.fitness
        lr = RunFolder(cfg.run_dir).read_snapshot()["lr"]
        factors, _ = funnel.tune_rows(rows, setups, task, lr, backend, (f.tune_points, f.tune_factor, f.tune_seeds),
                                      out / "tuning")
        cells, jobs = funnel.plan(rows, setups, funnel.fresh_seeds(task, fresh), factors)
        funnel.run(cells, jobs, backend)
    finally:
        backend.close()
    found = {r.key: r for r in rows if not r.control or r.found}
    return [(found[k], c.diff, c.p_holm) for (k, _, ck), c in funnel.compare(cells).items()
            if ck == rows[0].key and k in found and c.significant_win]


def first_found(outcome, winners: list[tuple[funnel.Finalist, float, float]], workers: int) -> float | None:
    """CPU-minutes into the search when the first candidate computing a winning function came back."""
    keys = {P.function_key(P.parse(row.equation)) for row, _, _ in winners}
    times = [e.t for e in outcome.controller.population if e.cand.fkey in keys]
    return min(times) * workers / 60 if times else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--max-evals", type=int, default=1000)
    ap.add_argument("--fresh", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="mlruns/rediscovery")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    seeds = [int(s) for s in args.seeds.split(",")]
    table = []
    for design in args.designs.split(","):
        found, minutes, walls = 0, [], []
        for seed in seeds:
            cfg, outcome, wall = search(design, seed, out, args.max_evals, args.workers)
            winners = retest(cfg, outcome, out, args.fresh, args.workers)
            first = first_found(outcome, winners, args.workers)
            found += bool(winners)
            minutes += [first] if first is not None else []
            walls.append(outcome.elapsed)
            print(f"{design} seed {seed}: search {outcome.elapsed / 60:.1f} min; "
                  + ("; ".join(f"{r.name}{f' (found: {r.found})' if r.found else ''} {d:+.2f} points, "
                               f"p_holm={p:.4f}" for r, d, p in winners) or "no winner")
                  + (f"; first found after {first:.1f} CPU-min" if first is not None else ""), flush=True)
        table.append((design, found, minutes, walls))
    print(f"\n{'design':<8} {'init':<38} {'beats tuned backprop':>21}  {'CPU-min to first (median, range)':>33}  "
          "search wall min (median)")
    for design, found, minutes, walls in table:
        first = (f"{statistics.median(minutes):.1f} ({min(minutes):.1f}-{max(minutes):.1f})" if minutes else "-")
        print(f"{design:<8} {DESIGNS[design]:<38} {found:>15} of {len(seeds)}  {first:>33}  "
              f"{statistics.median(walls) / 60:.1f}")


if __name__ == "__main__":
    main()
