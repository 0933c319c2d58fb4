"""How one candidate is scored, as training jobs: first its own learning rate, found by a bracket around the search's
tuned lr that walks outward while the best is at an edge (``lr_walk``; so a rule is neither lost nor won by its
step size), screened by early stops where it falls far behind the top N; then, for a candidate whose score would
enter the top N, extra seeds at the lr it chose, trained in full (its fitness becomes the mean, so one lucky seed
cannot take a place).

The loop hands out ``Job``s to the workers and gives their results back; a candidate is finished when all its jobs
are. Nothing here trains or knows about workers.
"""
from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from evaluators.task import EvalResult, TaskSpec

from gp_backprop.config import FitnessConfig
from gp_backprop.parallel import Backend
from gp_backprop.parallel.batch import run_all
from gp_backprop.search.controller import Candidate, Score
from gp_backprop.search.lr_walk import LrWalk
from gp_backprop.tuning import tuning_seeds

__all__ = ["Job", "Finished", "Scorer", "lr_walk", "score_rules"]


def lr_walk(f: FitnessConfig) -> LrWalk:
    """The lr search a search's ``[fitness]`` settings describe."""
    return LrWalk(f.lr_grid, f.lr_step, f.lr_reach, f.lr_tolerance)


@dataclass(frozen=True)
class Job:
    jid: int
    cid: int
    text: str
    task: TaskSpec


@dataclass(frozen=True)
class Finished:
    """A candidate whose jobs are all done: the result it is shown with, its score and the worker seconds used."""

    cid: int
    result: EvalResult          # its first seed's training at the chosen lr (learning curve, test accuracy)
    score: Score
    busy: float
    seed_accs: tuple[float, ...] = ()   # the fitness of each seed, in seed order (for paired comparisons)


@dataclass
class _Scoring:
    cand: Candidate
    jobs: list[int]                                   # this stage's job ids, in order
    factors: list[float] = field(default_factory=list)  # this stage's lr factors, while the lr is searched
    results: dict[int, EvalResult] = field(default_factory=dict)
    busy: float = 0.0
    tried: list[tuple[float, EvalResult]] = field(default_factory=list)   # (lr factor, result), in the order tried
    first: EvalResult | None = None                   # the lr search's winner, once it is done
    lr: float = 0.0


class Scorer:
    """Turns candidates into jobs and job results into ``Finished`` candidates.

    ``lr``: the search's (tuned) learning rate; ``walk``: the factors of it a candidate tries (``inherit``: its
    bracket starts around the lr its parent chose); ``extra_seeds``: seeds added for a promising candidate;
    ``promising(cand, fitness)``: whether a first score enters the top N (the search asks ``Candidate.promotes``,
    whose bar is fixed when the candidate is proposed). The lr search's trainings stop early where the candidate's
    ``screen`` says (``TaskSpec.hurdles``)."""

    def __init__(self, task: TaskSpec, lr: float, walk: LrWalk, extra_seeds: int,
                 promising: Callable[[Candidate, float], bool], inherit: bool = False) -> None:
        self.task, self.lr, self.walk, self.extra_seeds = task, lr, walk, extra_seeds
        self.promising, self.inherit = promising, inherit
        self._jids = itertools.count()
        self._open: dict[int, _Scoring] = {}          # cid -> scoring in progress
        self._owner: dict[int, int] = {}              # jid -> cid
        self.trainings = 0                            # jobs finished
        self.epochs = 0                               # epochs those trainings ran (one diverged in its first: 0)

    def start(self, cand: Candidate) -> list[Job]:
        """The first lr bracket's jobs for a new candidate."""
        centre = cand.parent_lr / self.lr if self.inherit and cand.parent_lr > 0 else 1.0
        return self._probe(_Scoring(cand, []), self.walk.start(centre))

    def _probe(self, s: _Scoring, factors: list[float]) -> list[Job]:
        s.factors = factors
        hurdles = self.task.hurdles + s.cand.screen
        return self._stage(s, [self.task.with_(lr=self.lr * f, hurdles=hurdles) for f in factors])

    def done(self, jid: int, result: EvalResult, busy: float) -> tuple[list[Job], Finished | None]:
        """Take one job's result: the jobs to run next (the lr walk's next step, or extra seeds) and the candidate,
        if it is finished now."""
        cid = self._owner.pop(jid, None)
        if cid is None:
            return [], None   # a job of a candidate already finished (e.g. a late duplicate): nothing to do
        s = self._open[cid]
        s.results[jid], s.busy = result, s.busy + busy
        self.trainings += 1
        self.epochs += len(result.val_curve)
        if len(s.results) < len(s.jobs):
            return [], None
        results = [s.results[j] for j in s.jobs]
        if s.first is None:
            s.tried += zip(s.factors, results)
            nxt = self.walk.next(s.tried)
            if nxt is not None:
                return self._probe(s, [nxt]), None
            factor, s.first = s.tried[self.walk.best(s.tried)]
            s.lr = self.lr * factor
            if self.extra_seeds and s.first.status == "ok" and self.promising(s.cand, s.first.fitness):
                seeds = tuning_seeds(self.task, self.extra_seeds + 1)[1:]
                return self._stage(s, [self.task.with_(lr=s.lr, seed=seed) for seed in seeds]), None
            return [], self._finish(s, [s.first])
        return [], self._finish(s, [s.first, *results])

    def _stage(self, s: _Scoring, tasks: list[TaskSpec]) -> list[Job]:
        s.jobs, s.results = [next(self._jids) for _ in tasks], {}
        self._open[s.cand.cid] = s
        for j in s.jobs:
            self._owner[j] = s.cand.cid
        return [Job(j, s.cand.cid, s.cand.text, t) for j, t in zip(s.jobs, tasks)]

    def _finish(self, s: _Scoring, seeds: list[EvalResult]) -> Finished:
        del self._open[s.cand.cid]
        accs = [r.fitness for r in seeds]
        losses = [Score.of(r).val_loss for r in seeds]
        tried = tuple((self.lr * f, r.fitness) for f, r in s.tried)
        score = Score(statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0, len(accs),
                      statistics.fmean(losses), s.lr, tried)
        first = s.first if s.first is not None else seeds[0]
        if len(seeds) > 1 and first.status == "ok" and any(r.status != "ok" for r in seeds[1:]):
            bad = next(r for r in seeds[1:] if r.status != "ok")
            first = replace(first, message=f"an extra seed ended {bad.status}: {bad.message}"[:500])
        return Finished(s.cand.cid, first, score, s.busy, tuple(accs))


def score_rules(texts: Sequence[str], task: TaskSpec, lr: float, walk: LrWalk, extra_seeds: int,
                backend: Backend) -> list[Finished]:
    """Score each rule exactly as the search scores a candidate of the initial population that enters the top N
    (its lr search from the search's lr, then the extra seeds at the lr it chose), on a started backend: for
    benchmarks and tests of the protocol itself."""
    cands = [Candidate(i, text, f"rule{i}") for i, text in enumerate(texts)]
    scorer = Scorer(task, lr, walk, extra_seeds, lambda cand, fitness: True)
    jobs = [j for c in cands for j in scorer.start(c)]
    finished: dict[int, Finished] = {}
    while jobs:
        results = run_all(backend, [(j.text, j.task) for j in jobs])
        nxt = []
        for job, result in zip(jobs, results):
            more, done = scorer.done(job.jid, result, result.wall_time)
            nxt += more
            if done is not None:
                finished[done.cid] = done
        jobs = nxt
    return [finished[c.cid] for c in cands]
