"""Search efficiency (issue 13, item 5): the project's default search against a naive loop of the paper's method
(Alber et al. 2018, §3.2), each for the same wall time on the same loky workers, side by side in one run.

The default search is ``run_search`` on the chosen preset (lr tuning first, lr grid, extra seeds for top-N entrants,
hurdles, both cache keys), with no MLflow tracking, its checkpoint in a temporary folder and no progress bar. Its time
budget is ``--minutes`` of search loop; the start-up and lr tuning before the loop come on top, as a user pays them.
The naive loop, written here with only the DSL (``primitives``) and ``evaluators.evaluate``, gets the same wall time
in all: it stops proposing when the search did (counted from each side's start) and, like the search, lets the
candidates in flight finish. It trains every candidate once, on the task's own seed, at the preset's lr, for all
epochs (no hurdle), skips only exact repeats of an equation's text, and keeps no records. Its controller is the
paper's: a parent uniformly from the N best so far with probability p, else from the rest, mutated k times (the
search's own N, p and k weights) and drawn again until ``primitives.check`` passes; its initial population is the
search's (the reference seed, the named seeds, then random equations or seed mutants, as ``space.init`` says).

Then the best rule of each is trained again on 5 fresh seeds (ones neither side trained on: the funnel's), for all
epochs, at the lr it chose (the search's: its grid winner; naive: the task's lr) and at the search's tuned lr, and
the two are compared with a paired t-test over those seeds. Candidates screened = candidates that got a fitness
(trained, hurdle stops included; cache hits are not), CPU-minutes = wall time x workers.
Usage: PYTHONPATH=. python benchmarks/search_efficiency.py [--minutes 3] [--workers 2] [--seed 0] [--preset default]
"""
from __future__ import annotations

import argparse
import bisect
import concurrent.futures as cf
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from joblib.externals.loky import ProcessPoolExecutor

import primitives as P
from evaluators import EvalResult, TaskSpec, evaluate
from gp_backprop.config import SearchConfig, SpaceConfig, build
from gp_backprop.funnel import fresh_seeds, paired_t
from gp_backprop.presets import PRESETS
from gp_backprop.search import Outcome, RunFolder, run_search

# Set before torch is imported in a worker: one thread each, the pool provides the parallelism.
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
MAX_TRIES = 100           # infeasible mutants of one parent before another parent is picked (as the project's)
MAX_DUPLICATES = 10_000   # text repeats in a row before the naive loop gives up (the space is exhausted)
RESCORE_SEEDS = 5
TARGET_RATIO = 10.0       # issue 13: >= 10x the naive loop's screened candidates per CPU-minute


# ---- the default search ---------------------------------------------------------------------------------------------
@dataclass
class SearchRun:
    outcome: Outcome
    start: float              # time.monotonic() when run_search was called
    wall: float               # seconds from the call to run_search until it returned
    before_loop: float        # of which before the search loop: workers starting, then the lr tuning
    tuned_lr: float


def search_config(preset: str, minutes: float, workers: int, seed: int, root: Path) -> SearchConfig:
    overrides = {"name": "efficiency", "seed": seed,
                 "budget": {"max_evals": 10**9, "time_budget": 60.0 * minutes},
                 "parallel": {"backend": "loky", "workers": workers},
                 "tracking": {"enabled": False, "uri": f"sqlite:///{root}/mlflow.db",
                              "artifacts": str(root / "artifacts"), "checkpoint_dir": str(root / "searches")}}
    return build([(f"preset {preset}", {**PRESETS[preset], "preset": preset}), ("benchmark", overrides)])


def run_default(cfg: SearchConfig) -> SearchRun:
    start = time.monotonic()
    outcome = run_search(cfg, progress=False)
    wall = time.monotonic() - start
    snapshot = RunFolder(cfg.run_dir).read_snapshot()
    return SearchRun(outcome, start, wall, wall - outcome.session_seconds, snapshot.get("lr", cfg.task.lr))


# ---- the naive paper loop -------------------------------------------------------------------------------------------
@dataclass
class Member:
    text: str
    eq: P.Equation
    result: EvalResult
    index: int

    @property
    def rank_key(self) -> tuple[float, float, int, int]:
        """Best first: fitness, then lower validation loss (as the project ranks), then the smaller, the earlier."""
        loss = self.result.val_loss if self.result.status == "ok" else float("inf")
        return (-self.result.fitness, loss, len(self.eq), self.index)


@dataclass
class NaiveLoop:
    """The paper's steady-state loop: ``workers`` candidates in flight, a new one proposed as each result arrives."""

    space: SpaceConfig
    task: TaskSpec
    workers: int
    seed: int
    ranked: list[Member] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)     # texts trained or in flight
    repeats: int = 0                                 # proposals skipped as an exact repeat of a text
    init_made: int = 0
    wall: float = 0.0

    def __post_init__(self) -> None:
        self.pset = P.default_pset(self.space.hard_threshold)
        self.rng = random.Random(self.seed)
        named = [] if self.space.init == "random" else \
            [s.strip() for s in self.space.init.split(":", 1)[1].split(",") if s.strip()]
        self.seeds = [self.space.reference] + [s for s in named if s != self.space.reference]
        self.mutated = named or self.seeds   # whose mutants fill a seeded initial population

    def run(self, stop_after: float) -> None:
        """Propose until ``stop_after`` seconds from the start, then let the candidates in flight finish."""
        start = time.monotonic()
        with ProcessPoolExecutor(max_workers=self.workers, env=ONE_THREAD) as pool:
            flight: dict[cf.Future, tuple[str, P.Equation]] = {}
            while True:
                while len(flight) < self.workers and time.monotonic() - start < stop_after:
                    cand = self._propose(bool(flight))
                    if cand is None:
                        break
                    flight[pool.submit(evaluate, cand[0], self.task)] = cand
                if not flight:
                    break
                done, _ = cf.wait(flight, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    text, eq = flight.pop(fut)
                    member = Member(text, eq, fut.result(), len(self.ranked))
                    bisect.insort(self.ranked, member, key=lambda m: m.rank_key)
        self.wall = time.monotonic() - start

    def _propose(self, waiting: bool) -> tuple[str, P.Equation] | None:
        """A new text to train, or None: nothing trained yet to mutate while results are on their way, or the
        space exhausted."""
        for _ in range(MAX_DUPLICATES):
            if self.init_made < self.space.population:
                eq = self._initial()
                self.init_made += 1
            elif self.ranked and (child := self._offspring()) is not None:
                eq = child
            else:
                return None
            text = P.format(eq)
            if text not in self.seen:
                self.seen.add(text)
                return text, eq
            self.repeats += 1
        if not waiting:
            print("naive loop: the space looks exhausted (10,000 repeats in a row)", file=sys.stderr)
        return None

    def _initial(self) -> P.Equation:
        i = self.init_made
        if i < len(self.seeds) and (i == 0 or self.space.init != "random"):
            return P.parse(P.SEEDS[self.seeds[i]], self.pset)
        if self.space.init == "random":
            return self._feasible(lambda: P.random_equation(self.rng, self.pset, form=self.space.form))
        seed = P.parse(P.SEEDS[self.mutated[(i - len(self.seeds)) % len(self.mutated)]], self.pset)
        k = self._k()
        return self._feasible(lambda: P.mutate(seed, self.rng, k, pset=self.pset))

    def _offspring(self) -> P.Equation | None:
        for _ in range(MAX_TRIES):  # the paper: an infeasible mutant is drawn again; after MAX_TRIES, another parent
            parent, k = self._select(), self._k()
            for _ in range(MAX_TRIES):
                child = P.mutate(parent.eq, self.rng, k, pset=self.pset)
                if P.check(child):
                    return child
        return None

    def _select(self) -> Member:
        n, ranked = self.space.population, self.ranked
        if len(ranked) <= n or self.rng.random() < self.space.p_top:
            return ranked[self.rng.randrange(min(n, len(ranked)))]
        return ranked[n + self.rng.randrange(len(ranked) - n)]

    def _k(self) -> int:
        return self.rng.choices(range(1, len(self.space.k_weights) + 1), weights=self.space.k_weights)[0]

    @staticmethod
    def _feasible(make) -> P.Equation:
        while True:
            eq = make()
            if P.check(eq):
                return eq


# ---- re-scoring the two best rules ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rescore:
    label: str
    text: str
    lr: float
    accs: tuple[float, ...]   # validation accuracy per fresh seed, in seed order

    def line(self) -> str:
        a = self.accs
        return (f"{self.label:<15} lr {self.lr:<7.4g} val acc {statistics.fmean(a):.4f} ± {statistics.stdev(a):.4f} "
                f"(range {min(a):.4f}-{max(a):.4f})")


def rescore(rules: list[tuple[str, str, float]], task: TaskSpec, seeds: list[int], workers: int) -> list[Rescore]:
    """Each (label, text, lr) trained on ``seeds`` for all epochs, no hurdle, on ``workers`` processes."""
    tasks = {(text, lr, s): task.with_(lr=lr, seed=s, hurdle_epoch=0) for _, text, lr in rules for s in seeds}
    with ProcessPoolExecutor(max_workers=workers, env=ONE_THREAD) as pool:
        futures = {key: pool.submit(evaluate, key[0], t) for key, t in tasks.items()}
        accs = {key: f.result().fitness for key, f in futures.items()}
    return [Rescore(label, text, lr, tuple(accs[(text, lr, s)] for s in seeds)) for label, text, lr in rules]


def compare(name: str, search: Rescore, naive: Rescore) -> None:
    diff, p = paired_t(search.accs, naive.accs)
    verdict = ("search" if diff > 0 else "naive" if diff < 0 else "neither") + \
        (" (significant at 0.05)" if p < 0.05 else " (not significant at 0.05)")
    print(f"  {name}:\n    {search.line()}\n    {naive.line()}\n    search - naive {100 * diff:+.2f} points, paired "
          f"t-test p = {p:.3g}; better: {verdict}  (target: search's at least as good: "
          f"{'ok' if diff >= 0 else 'BELOW'})")


# ---- the run --------------------------------------------------------------------------------------------------------
class FirstWrite:
    """stdout, noting when the first thing was written (the search prints its lr tuning table as tuning starts)."""

    def __init__(self, stream) -> None:
        self.stream, self.at = stream, None

    def write(self, text: str) -> int:
        if self.at is None and text.strip():
            self.at = time.monotonic()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def timed_search(cfg: SearchConfig) -> tuple[SearchRun, float]:
    """The default search, and how many of its seconds before the loop went to lr tuning (from its first output on;
    the rest started the workers)."""
    tee, out = FirstWrite(sys.stdout), sys.stdout
    sys.stdout = tee
    try:
        run = run_default(cfg)
    finally:
        sys.stdout = out
    tuning = 0.0 if tee.at is None or not cfg.fitness.tune else max(0.0, run.start + run.before_loop - tee.at)
    return run, tuning


def row(name: str, a: object, b: object) -> None:
    print(f"  {name:<36} {a!s:>16} {b!s:>16}")


def report(run: SearchRun, tuning: float, naive: NaiveLoop, workers: int) -> float:
    """The side-by-side table; returns the ratio of screened candidates per CPU-minute, search / naive."""
    out, ctl = run.outcome, run.outcome.controller
    s_cpu, n_cpu = run.wall * workers / 60.0, naive.wall * workers / 60.0
    s_rate, n_rate = out.session_evals / s_cpu, len(naive.ranked) / n_cpu
    best, nbest = ctl.ranked[0], naive.ranked[0]
    print(f"\n  {'':<36} {'default search':>16} {'naive loop':>16}")
    row("wall seconds", f"{run.wall:.1f}", f"{naive.wall:.1f}")
    row("  of which starting workers", f"{run.before_loop - tuning:.1f}", "-")
    row("  of which lr tuning", f"{tuning:.1f}", "-")
    row("  of which search loop", f"{out.session_seconds:.1f}", f"{naive.wall:.1f}")
    row("candidates screened", out.session_evals, len(naive.ranked))
    row("trainings", int(out.stats.get("trainings", 0)), len(naive.ranked))
    row("cache hits (same text or key)", ctl.cache_hits - ctl.function_hits, naive.repeats)
    row("cache hits (same function)", ctl.function_hits, "-")
    row("CPU-minutes (wall x workers)", f"{s_cpu:.2f}", f"{n_cpu:.2f}")
    row("screened per CPU-minute", f"{s_rate:.1f}", f"{n_rate:.1f}")
    row("best fitness in the run (own seeds)", f"{best.fitness:.4f}", f"{nbest.result.fitness:.4f}")
    print(f"  best rule, search: {best.cand.text}\n  best rule, naive:  {nbest.text}")
    ratio = s_rate / n_rate if n_rate > 0 else float("inf")
    print(f"\n  screened per CPU-minute, search / naive: {ratio:.2f}x  (target >= {TARGET_RATIO:g}x: "
          f"{'ok' if ratio >= TARGET_RATIO else 'BELOW'})")
    return ratio


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=3.0,
                   help="the search's time budget (default 3); the naive loop gets the search's whole wall time, "
                        "its start-up and lr tuning included")
    p.add_argument("--workers", type=int, default=2, help="loky worker processes for each side (default 2)")
    p.add_argument("--seed", type=int, default=0, help="controller seed, the same for both sides (default 0)")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS), help="the search's preset (default)")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.workers < 1:
        p.error(f"--minutes {args.minutes} and --workers {args.workers} must be positive; e.g. --minutes 3 --workers 2")
    torch.set_num_threads(1)  # the controllers' feasibility probes are tiny; threads would compete with the workers
    with tempfile.TemporaryDirectory() as d:
        cfg = search_config(args.preset, args.minutes, args.workers, args.seed, Path(d))
        t = cfg.task
        print(f"search efficiency: preset {args.preset} ({t.dataset}, {t.model.arch} {t.model.widths}, {t.epochs} "
              f"epochs), {args.workers} loky workers each, {args.minutes:g} min of search loop, controller seed "
              f"{args.seed}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n", flush=True)
        run, tuning = timed_search(cfg)
    naive = NaiveLoop(cfg.space, t.with_(hurdle_epoch=0), args.workers, args.seed)
    stop = run.before_loop + 60.0 * args.minutes  # when the search stopped proposing, from its start
    print(f"\nnaive loop: proposing for {stop:.1f} s (as long as the search, its start-up and lr tuning included), "
          "then finishing the candidates in flight", flush=True)
    naive.run(stop_after=stop)
    if not run.outcome.controller.ranked or not naive.ranked:
        print(f"nothing to compare: the search ended {run.outcome.status!r} {run.outcome.message}", file=sys.stderr)
        return 1
    report(run, tuning, naive, args.workers)
    best = run.outcome.controller.ranked[0]
    own = best.score.lr if best.score is not None and best.score.lr > 0 else run.tuned_lr
    seeds = fresh_seeds(t, RESCORE_SEEDS)
    print(f"\nthe best rule of each on fresh seeds {seeds}, {t.epochs} epochs, no hurdle "
          f"(search's tuned lr {run.tuned_lr:g}, task lr {t.lr:g}):", flush=True)
    rules = [("search's best", best.cand.text, own), ("naive's best", naive.ranked[0].text, t.lr),
             ("search's best", best.cand.text, run.tuned_lr), ("naive's best", naive.ranked[0].text, run.tuned_lr)]
    scored = rescore(rules, t, seeds, args.workers)
    compare("each at the lr it chose", scored[0], scored[1])
    compare(f"both at the tuned lr {run.tuned_lr:g}", scored[2], scored[3])
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
