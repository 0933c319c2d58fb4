"""Rediscovery (issue 24, item 3): does the default search, at its default budget, reach a rule that beats tuned
backprop on fresh seeds, and how soon? One row per design of the initial population, over several search seeds.

    PYTHONPATH=. python benchmarks/rediscovery.py [--designs random,backprop] [--seeds 1,2,3,4,5] [--out DIR]

For each design and search seed: the default search (``--preset default`` with the design's ``space.init``), then
the funnel's A1 on its top 10 distinct functions with ``--fresh`` fresh seeds, every row and the controls at their
own tuned lr (``funnel.rows``, ``tune_rows``, ``plan``, ``run``, ``compare``). A success is a row that beats tuned
backprop at Holm-corrected p < 0.05 over that table, a control the search found among its top functions included
(rediscovering ``g/||g||_F`` counts). How soon: the evaluation number of the search's first candidate of that
function, and the worker-minutes inside trainings until it came back. Everything lands under ``--out`` (MLflow store, checkpoints, tuning cache),
so a rerun skips the searches and the tunings already done. "Worker-min" is time inside trainings, so it grows with
the machine's load; the candidate number does not.
"""
from __future__ import annotations

import argparse
import statistics
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
    """The design's search with this seed, run or continued to its end: (config, outcome)."""
    cfg = build([("preset", PRESETS["default"]), ("bench", {
        "name": f"{design}-{seed}", "seed": seed, "space": {"init": DESIGNS[design]},
        "budget": {"max_evals": max_evals}, "parallel": {"workers": workers},
        "tracking": {"uri": f"sqlite:///{out}/mlflow.db", "artifacts": str(out / "artifacts"),
                     "checkpoint_dir": str(out / "searches")}})])
    return cfg, run_search(cfg, resume=RunFolder(cfg.run_dir).exists(), progress=False)


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


def first_found(outcome, winners: list[tuple[funnel.Finalist, float, float]]) -> tuple[int, float] | None:
    """When the search's first candidate computing a winning function came back: its evaluation number, and the
    worker minutes spent inside trainings until then (the candidates before it and its own)."""
    keys = {P.function_key(P.parse(row.equation)) for row, _, _ in winners}
    pop = outcome.controller.population
    first = next((e.index for e in pop if e.cand.fkey in keys), None)
    return None if first is None else (first + 1, sum(e.busy for e in pop[:first + 1]) / 60)


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
    designs = args.designs.split(",")
    table = {d: (0, [], []) for d in designs}
    for seed in seeds:               # seed by seed, so that a run cut short has searched every design equally
        for design in designs:
            cfg, outcome = search(design, seed, out, args.max_evals, args.workers)
            winners = retest(cfg, outcome, out, args.fresh, args.workers)
            first = first_found(outcome, winners)
            found, minutes, walls = table[design]
            table[design] = (found + bool(winners), minutes + ([first] if first else []), walls + [outcome.elapsed])
            print(f"{design} seed {seed}: search {outcome.elapsed / 60:.1f} min; "
                  + ("; ".join(f"{r.name}{f' (found: {r.found})' if r.found else ''} {d:+.2f} points, "
                               f"p_holm={p:.4f}" for r, d, p in winners) or "no winner")
                  + (f"; first found as candidate {first[0]}, after {first[1]:.1f} worker-min" if first else ""),
                  flush=True)
    print(f"\n{'design':<8} {'init':<38} {'beats tuned backprop':>21}  {'first found: candidate, worker-min':>35}  "
          "search wall min (median)")
    for design, (found, minutes, walls) in table.items():
        first = ", ".join(f"#{i} {m:.1f}" for i, m in minutes) or "-"
        print(f"{design:<8} {DESIGNS[design]:<38} {found:>15} of {len(seeds)}  {first:>35}  "
              f"{statistics.median(walls) / 60:.1f}")


if __name__ == "__main__":
    main()
