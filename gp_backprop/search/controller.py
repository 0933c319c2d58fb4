"""The evolutionary controller of Backprop Evolution (Alber et al. 2018, §3.2; reference §2), ask/tell style.

``propose()`` returns the next candidate to train and ``tell()`` takes its result back. All randomness comes from the
controller's own ``random.Random``, and the whole state round-trips through JSON (``state()``/``from_state``), so a
search is reproducible from its seed and a resumed search continues exactly where it stopped (STYLE §8).
"""
from __future__ import annotations

import bisect
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import primitives as P
from evaluators.task import STATUSES, EvalResult

from gp_backprop.config import ConfigError, SpaceConfig, did_you_mean, init_seeds
from gp_backprop.search.selection import SELECTIONS

__all__ = ["Candidate", "Entry", "Controller", "Score"]

MAX_TRIES = 100          # infeasible mutants of one parent before another parent is picked
MAX_DUPLICATES = 10_000  # cache hits in a row before the controller gives up proposing (the space is exhausted)


@dataclass(frozen=True)
class Candidate:
    """An equation to train. Only ``text`` (with the task) goes to a worker."""

    cid: int                 # proposal number among trained candidates, from 0
    text: str
    key: str                 # primitives.key: equal keys compute the same function
    parent: str = ""         # parent's key; "" for the initial population
    origin: str = "mutation"  # reference | random | seed:NAME | mutation
    mutation: str = ""       # what changed, e.g. "2: add -> sub"
    latex: str = ""          # computed once, from the tree, when the candidate is proposed
    size: int = 0            # nodes in the tree (the last tie-break: simpler first)
    fkey: str = ""           # primitives.function_key: equal keys compute the same function, whatever the text
    screen: tuple[tuple[int, float], ...] = ()  # its lr search's early stops, from the top N when it was proposed
    parent_lr: float = 0.0   # the lr its parent's score chose (0: no trained parent); fitness.lr_inherit starts there
    bar: float | None = None  # a first score at or above this earns extra seeds: the N-th best fitness when it was
    #                           proposed (None: the top N was not full, every first score enters it)

    def promotes(self, fitness: float) -> bool:
        """Whether a first score of ``fitness`` would place this candidate among the top N (ties included), against
        the top N it was proposed from: fixed then, so the answer does not depend on when its score comes back."""
        return self.bar is None or fitness >= self.bar


@dataclass(frozen=True)
class Score:
    """A candidate's fitness: mean validation accuracy over the seeds it trained on, at the lr it chose."""

    mean: float
    std: float = 0.0
    n: int = 1               # seeds: 1, or 1 + the extra seeds of a candidate promoted into the top N
    val_loss: float = 0.0    # mean final validation loss over those seeds (the first tie-break: lower first)
    lr: float = 0.0          # the learning rate its lr search chose (0: the task's own)
    tried: tuple[tuple[float, float], ...] = ()   # (lr, fitness) of each lr its search tried, in order

    @classmethod
    def of(cls, result: EvalResult, lr: float = 0.0) -> "Score":
        return cls(result.fitness, 0.0, 1, _loss(result), lr)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Score":
        """A score from its JSON form (``asdict``), its lists back to tuples."""
        return cls(**{**d, "tried": tuple((float(lr), float(acc)) for lr, acc in d.get("tried", ()))})


def _loss(result: EvalResult) -> float:
    return result.val_loss if result.status in ("ok", "hurdle") and math.isfinite(result.val_loss) else math.inf


@dataclass(frozen=True)
class Entry:
    """A trained candidate in the population."""

    index: int               # evaluation number, in the order results came back, from 0
    cand: Candidate
    result: EvalResult
    busy: float = 0.0        # seconds the worker spent inside the evaluation function
    t: float = 0.0           # seconds since the search started, when the result came back
    at: float = 0.0          # wall-clock time (epoch seconds) when the result came back
    score: Score | None = None  # None: the result alone (one seed, the task's lr)

    @property
    def fitness(self) -> float:
        return self.score.mean if self.score is not None else self.result.fitness

    @property
    def rank_key(self) -> tuple[float, float, int, int]:
        """Best first: fitness, then lower validation loss, then the smaller equation, then the earlier."""
        loss = self.score.val_loss if self.score is not None else _loss(self.result)
        return (-self.fitness, loss, self.cand.size, self.index)

    def to_dict(self) -> dict[str, Any]:
        d = {"index": self.index, "cand": asdict(self.cand), "result": self.result.to_dict(),
             "busy": self.busy, "t": self.t, "at": self.at}
        if self.score is not None:
            d["score"] = asdict(self.score)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Entry":
        score = Score.from_dict(d["score"]) if "score" in d else None
        return cls(d["index"], _candidate(d["cand"]), EvalResult.from_dict(d["result"]), d["busy"], d["t"], d["at"],
                   score)


def _candidate(d: dict[str, Any]) -> Candidate:
    """A candidate from its JSON form; checkpoints written before candidates carried LaTeX and size get them here."""
    if "screen" in d:
        d = {**d, "screen": tuple((int(e), float(a)) for e, a in d["screen"])}
    cand = Candidate(**d)
    if cand.latex and cand.size and cand.fkey:
        return cand
    eq = P.parse(cand.text)
    return replace(cand, latex=P.latex(eq), size=len(eq), fkey=P.function_key(eq))


def sanitize(result: EvalResult) -> EvalResult:
    """A result the population can rank: a known status, and a finite accuracy (else diverged, fitness 0)."""
    if result.status not in STATUSES:
        return replace(result, status="error", val_acc=0.0, message=f"unknown status {result.status!r}")
    if not (math.isfinite(result.val_acc) and math.isfinite(result.test_acc)):
        return replace(result, status="diverged", val_acc=0.0, test_acc=0.0,
                       message=result.message or "non-finite accuracy")
    return result


def describe(parent: list, child: list) -> str:
    """The components a mutation swapped, by position in prefix order (mutation keeps the tree's shape)."""
    return "; ".join(f"{i}: {P.display_name(a)} -> {P.display_name(b)}"
                     for i, (a, b) in enumerate(zip(parent, child)) if a.name != b.name)


class Controller:
    """Proposes candidates (initial population first, then mutants of selected parents) and keeps the population."""

    def __init__(self, space: SpaceConfig, seed: int) -> None:
        self.space = space
        self.pset = P.default_pset(space.hard_threshold)
        if space.selection not in SELECTIONS:
            raise ConfigError(f"space.selection = {space.selection!r} is unknown"
                              f"{did_you_mean(space.selection, SELECTIONS)}")
        self.select = SELECTIONS[space.selection]
        self.k_options = list(range(1, len(space.k_weights) + 1))
        self.rng = random.Random(seed)
        self.population: list[Entry] = []       # completion order
        self.ranked: list[Entry] = []           # best first, by Entry.rank_key
        self.known: dict[str, Entry] = {}       # key -> entry
        self.inflight: dict[int, Candidate] = {}
        self.inflight_keys: set[str] = set()
        self.by_function: dict[str, str] = {}   # function key -> the key of the candidate that has (had) it
        self.hits: Counter[str] = Counter()      # key -> times proposed again (cache hits, either kind)
        self.function_hits = 0                  # hits on the function key alone (same function, other text)
        self.next_cid = 0
        self.proposals = 0
        self.init_made = 0
        seeds = init_seeds(space.init)
        self.seeds = [space.reference] + [s for s in seeds if s != space.reference]
        self.reference_key = P.key(P.parse(P.SEEDS[space.reference], self.pset))
        self._eqs: dict[str, P.Equation] = {}  # key -> parsed equation, so parents are not parsed again
        self._population_json: list[str] = []
        # The search's screening (epochs, margin). Each candidate's stops, and the bar its first score must reach for
        # extra seeds, are fixed when it is proposed, from the top N then, and travel with it: its result does not
        # depend on when it trains, and a resumed search retrains its in-flight candidates exactly as they would have.
        self.screening: tuple[tuple[int, ...], float] = ((), 0.0)
        self.dry = False   # the last propose() found nothing, and no result came since: asking again cannot help

    # ---- proposing ----------------------------------------------------------------------------------------------
    @property
    def cache_hits(self) -> int:
        return self.proposals - self.next_cid

    def propose(self) -> Candidate | None:
        """The next candidate to train, or None if none can be proposed now (initial population still in flight,
        or MAX_DUPLICATES cache hits in a row). Duplicates of trained or in-flight keys are counted as cache hits."""
        for _ in range(MAX_DUPLICATES):
            if self.init_made < self.space.population:
                eq, parent, origin, mutation = self._initial()
                parent_lr = 0.0
                self.init_made += 1
            elif self.population and (child := self._offspring()) is not None:
                eq, parent, origin, mutation, parent_lr = child
            else:
                self.dry = True
                return None
            self.proposals += 1
            k = P.key(eq)
            if k in self.known or k in self.inflight_keys:
                self.hits[k] += 1
                continue
            fk = P.function_key(eq)
            if fk in self.by_function:  # the same function under another text: its result would be the same
                owner = self.by_function[fk]
                self.hits[owner] += 1
                self.function_hits += 1
                continue
            self._eqs[k] = eq
            self.by_function[fk] = k
            cand = Candidate(self.next_cid, P.format(eq), k, parent, origin, mutation, P.latex(eq), len(eq), fk,
                             self.screen(*self.screening), parent_lr, self.top_bar())
            self.next_cid += 1
            self.inflight[cand.cid] = cand
            self.inflight_keys.add(k)
            self.dry = False
            return cand
        self.dry = True
        return None

    def _feasible(self, make: Any) -> P.Equation:
        while True:  # the paper: infeasible equations are drawn again
            eq = make()
            if P.check(eq):
                return eq

    def _k(self) -> int:
        return self.rng.choices(self.k_options, weights=self.space.k_weights)[0]

    def _initial(self) -> tuple[P.Equation, str, str, str]:
        i = self.init_made
        if i < len(self.seeds) and (i == 0 or self.space.init != "random"):
            name = self.seeds[i]
            return P.parse(P.SEEDS[name], self.pset), "", "reference" if i == 0 else f"seed:{name}", ""
        if self.space.init == "random":
            return self._feasible(lambda: P.random_equation(self.rng, self.pset, form=self.space.form)), "", \
                "random", ""
        # Mutants of the named seeds (the reference only if it was named), round robin.
        named = self.seeds if self.space.reference in init_seeds(self.space.init) else self.seeds[1:]
        name = named[(i - len(self.seeds)) % len(named)]
        seed = P.parse(P.SEEDS[name], self.pset)
        k = self._k()
        child = self._feasible(lambda: P.mutate(seed, self.rng, k, pset=self.pset))
        return child, P.key(seed), f"seed:{name}", describe(seed, child)

    def _offspring(self) -> tuple[P.Equation, str, str, str, float] | None:
        for _ in range(MAX_TRIES):
            parent = self.select(self.rng, self.ranked, self.space)
            eq = self._eqs.get(parent.cand.key)
            if eq is None:
                eq = self._eqs[parent.cand.key] = P.parse(parent.cand.text, self.pset)
            k = self._k()
            for _ in range(MAX_TRIES):
                child = P.mutate(eq, self.rng, k, pset=self.pset)
                if P.check(child):
                    lr = parent.score.lr if parent.score is not None else 0.0
                    return child, parent.cand.key, "mutation", describe(eq, child), lr
        return None  # no parent tried has a feasible mutant

    # ---- results ------------------------------------------------------------------------------------------------
    def tell(self, cid: int, result: EvalResult, busy: float = 0.0, t: float = 0.0, at: float = 0.0,
             score: Score | None = None) -> Entry:
        """Record the result of in-flight candidate ``cid`` (and its score over several trainings, if it has one);
        returns its population entry."""
        cand = self.inflight.pop(cid)
        self.inflight_keys.discard(cand.key)
        self.dry = False
        if score is not None and not math.isfinite(score.mean):
            score = replace(score, mean=0.0)
        entry = Entry(len(self.population), cand, sanitize(result), busy, t, at, score)
        self._add(entry)
        return entry

    def _add(self, entry: Entry, text: str | None = None) -> None:
        self.population.append(entry)
        # Entries never change: serialise each once, so a snapshot of thousands costs a string join, not a dump.
        self._population_json.append(text if text is not None else json.dumps(entry.to_dict(), separators=(",", ":")))
        self.known[entry.cand.key] = entry
        self.by_function.setdefault(entry.cand.fkey, entry.cand.key)
        bisect.insort(self.ranked, entry, key=lambda e: e.rank_key)

    def entry_json(self, index: int) -> str:
        """Entry ``index`` as JSON text (kept from when it was added)."""
        return self._population_json[index]

    def top_bar(self) -> float | None:
        """The fitness a first score must reach to enter the top N now (ties included); None while it is not full."""
        n = self.space.population
        return self.ranked[n - 1].fitness if len(self.ranked) >= n else None

    def screen(self, epochs: Sequence[int], margin: float) -> tuple[tuple[int, float], ...]:
        """Early stops for a new candidate's trainings (``TaskSpec.hurdles``): at each of ``epochs``, ``margin``
        under the lowest validation accuracy any top-N entry had there. None until the top N is full: before that
        every trained candidate enters it."""
        n = self.space.population
        if not epochs or len(self.ranked) < n:
            return ()
        curves = [e.result.val_curve for e in self.ranked[:n]]
        return tuple((epoch, min(c[epoch - 1] for c in long) - margin) for epoch in epochs
                     if (long := [c for c in curves if len(c) >= epoch]))

    def best(self) -> Entry | None:
        return self.ranked[0] if self.ranked else None

    def reference(self) -> Entry | None:
        return self.known.get(self.reference_key)

    # ---- state --------------------------------------------------------------------------------------------------
    def state_json(self) -> str:
        """Everything needed to continue, as JSON text (the RNG state's tuples become lists)."""
        version, internal, gauss = self.rng.getstate()
        head = json.dumps({
            "rng": [version, list(internal), gauss],
            "next_cid": self.next_cid, "proposals": self.proposals, "init_made": self.init_made,
            "hits": self.hits, "function_hits": self.function_hits, "dry": self.dry,
            "inflight": [asdict(c) for c in self.inflight.values()],
        }, separators=(",", ":"))
        return f'{head[:-1]},"population":[{",".join(self._population_json)}]}}'

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_json())

    @classmethod
    def from_state(cls, space: SpaceConfig, seed: int, state: dict[str, Any]) -> "Controller":
        ctl = cls(space, seed)
        version, internal, gauss = state["rng"]
        ctl.rng.setstate((version, tuple(internal), gauss))
        ctl.next_cid, ctl.proposals, ctl.init_made = state["next_cid"], state["proposals"], state["init_made"]
        ctl.hits = Counter(state["hits"])
        ctl.function_hits = state.get("function_hits", 0)
        ctl.dry = bool(state.get("dry", False))
        for d in state["population"]:
            ctl._add(Entry.from_dict(d))
        for d in state["inflight"]:
            cand = _candidate(d)
            ctl.inflight[cand.cid] = cand
            ctl.inflight_keys.add(cand.key)
            ctl.by_function.setdefault(cand.fkey, cand.key)
        return ctl
