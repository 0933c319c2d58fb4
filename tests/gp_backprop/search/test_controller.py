"""The controller (paper §3.2): initial population, selection, k mutations, feasibility, cache hits, and state."""
from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass

import pytest
from deap import tools

import primitives as P
from evaluators.task import EvalResult
from gp_backprop.config import SpaceConfig
from gp_backprop.search.controller import Controller, describe, sanitize
from gp_backprop.search.selection import SELECTIONS


@dataclass
class Fake:
    fitness: float
    name: int


def ranked(n: int) -> list[Fake]:
    return [Fake(1.0 - i / n, i) for i in range(n)]


def run(ctl: Controller, evals: int, rng: random.Random) -> None:
    """Train ``evals`` candidates one at a time with random fake accuracies."""
    for _ in range(evals):
        cand = ctl.propose()
        ctl.tell(cand.cid, EvalResult("ok", val_acc=rng.random()))


def test_top_n_picks_from_the_top_with_probability_p() -> None:
    space, rng, pop = SpaceConfig(population=10, p_top=0.7), random.Random(0), ranked(50)
    picks = [SELECTIONS["top_n"](rng, pop, space).name for _ in range(20000)]
    top = sum(p < 10 for p in picks) / len(picks)
    assert top == pytest.approx(0.7, abs=0.02)
    counts = Counter(picks)
    assert set(counts) == set(range(50))                     # uniform within each part: everyone is picked
    assert max(counts[i] for i in range(10)) / min(counts[i] for i in range(10)) < 1.3


def test_top_n_with_no_rest_always_picks_from_the_top() -> None:
    space, rng = SpaceConfig(population=10, p_top=0.0), random.Random(0)
    assert {SELECTIONS["top_n"](rng, ranked(10), space).name for _ in range(500)} == set(range(10))


def test_tournament_is_deap_seltournament_on_the_controllers_rng() -> None:
    space, pop = SpaceConfig(tournament_size=3), ranked(30)
    state = random.getstate()
    random.seed(5)                                           # DEAP draws from the global generator
    theirs = [f.name for f in tools.selTournament(pop, 50, 3, fit_attr="fitness")]
    random.setstate(state)
    rng = random.Random(5)
    assert [SELECTIONS["tournament"](rng, pop, space).name for _ in range(50)] == theirs
    state = random.getstate()
    a = [SELECTIONS["tournament"](random.Random(5), pop, space).name for _ in range(50)]
    b = [SELECTIONS["tournament"](random.Random(5), pop, space).name for _ in range(50)]
    assert a == b and random.getstate() == state             # reproducible; the global random is untouched
    rng = random.Random(1)
    picks = [SELECTIONS["tournament"](rng, pop, space).name for _ in range(3000)]
    assert sum(picks) / len(picks) < 0.35 * 30               # the best of 3 is biased towards the top
    big = SpaceConfig(tournament_size=200)
    assert SELECTIONS["tournament"](random.Random(2), pop, big).name == 0


def test_k_is_drawn_from_its_categorical_distribution() -> None:
    ctl = Controller(SpaceConfig(k_weights=(0.5, 0.0, 0.5)), seed=0)
    counts = Counter(ctl._k() for _ in range(4000))
    assert set(counts) == {1, 3} and counts[1] / 4000 == pytest.approx(0.5, abs=0.03)


def test_initial_population_then_feasible_mutants_of_population_members() -> None:
    ctl = Controller(SpaceConfig(population=6), seed=1)
    run(ctl, 40, random.Random(0))
    pop = ctl.population
    assert pop[0].cand.text == P.SEEDS["backprop"] and pop[0].cand.origin == "reference"
    assert [e.cand.origin for e in pop[1:6]] == ["random"] * 5
    keys = {e.cand.key for e in pop}
    assert len(keys) == 40                                     # each key trained once
    for e in pop[6:]:
        assert e.cand.origin == "mutation" and e.cand.parent in keys and e.cand.mutation
        eq = P.parse(e.cand.text, ctl.pset)
        assert P.check(eq) and P.key(eq) == e.cand.key


def test_named_seeds_then_their_mutants() -> None:
    space = SpaceConfig(population=8, init="seeds:ftp_sh,sste", hard_threshold=True)
    ctl = Controller(space, seed=0)
    cands = [ctl.propose() for _ in range(8)]
    assert [c.text for c in cands[:3]] == [P.SEEDS["backprop"], P.SEEDS["ftp_sh"], P.SEEDS["sste"]]
    seed_keys = {P.key(P.parse(P.SEEDS[s], ctl.pset)) for s in ("ftp_sh", "sste")}
    for c in cands[3:]:
        assert c.origin in ("seed:ftp_sh", "seed:sste") and c.parent in seed_keys and " -> " in c.mutation


def test_duplicates_are_cache_hits_and_never_trained_again() -> None:
    # One seed and its one-mutation neighbourhood: duplicates come quickly.
    ctl = Controller(SpaceConfig(population=1, init="seeds:backprop"), seed=0)
    run(ctl, 60, random.Random(0))
    assert ctl.cache_hits > 0 and ctl.proposals == 60 + ctl.cache_hits
    assert len({e.cand.key for e in ctl.population}) == 60 and sum(ctl.hits.values()) == ctl.cache_hits


def test_in_flight_duplicates_are_cache_hits_too() -> None:
    ctl = Controller(SpaceConfig(population=1, init="seeds:backprop"), seed=0)
    first = ctl.propose()
    ctl.tell(first.cid, EvalResult("ok", val_acc=0.5))
    flying = [ctl.propose() for _ in range(30)]               # nothing returns: all in flight at once
    in_flight = {c.key for c in flying}
    assert len(in_flight) == 30                                # none proposed twice while in flight
    # Every proposal is a candidate or a cache hit; some hits are of keys still in flight, not only of the trained one.
    assert ctl.proposals == 31 + ctl.cache_hits
    assert set(ctl.hits) <= in_flight | {first.key} and sum(ctl.hits[k] for k in in_flight if k in ctl.hits) > 0


def test_state_round_trips_through_json_and_continues_identically() -> None:
    space = SpaceConfig(population=5, k_weights=(0.6, 0.4))
    a = Controller(space, seed=7)
    run(a, 25, random.Random(1))
    pending = a.propose()
    b = Controller.from_state(space, 7, json.loads(json.dumps(a.state())))
    assert [e.to_dict() for e in b.population] == [e.to_dict() for e in a.population]
    assert list(b.inflight) == [pending.cid] and b.cache_hits == a.cache_hits
    ra, rb = random.Random(2), random.Random(2)
    for ctl, rng in ((a, ra), (b, rb)):
        ctl.tell(pending.cid, EvalResult("ok", val_acc=0.9))
        run(ctl, 20, rng)
    assert [e.cand for e in a.population] == [e.cand for e in b.population]


def test_sanitize_makes_every_result_rankable() -> None:
    nan = sanitize(EvalResult("ok", val_acc=math.nan))
    assert nan.status == "diverged" and nan.fitness == 0.0
    assert sanitize(EvalResult("weird", val_acc=0.9)).status == "error"
    ok = EvalResult("ok", val_acc=0.9)
    assert sanitize(ok) is ok


def test_describe_names_the_swapped_components() -> None:
    parent = P.parse("add(norm_fro(g), scale_0.5(g))")
    child = P.parse("sub(norm_fro(g), scale_0.5(h))")
    assert describe(parent, child) == "0: add -> sub; 4: g -> h"


def test_ranking_puts_failures_last_and_keeps_evaluation_order_for_ties() -> None:
    ctl = Controller(SpaceConfig(population=4), seed=0)
    results = [EvalResult("ok", val_acc=0.5), EvalResult("error"), EvalResult("ok", val_acc=0.7),
               EvalResult("ok", val_acc=0.5)]
    for r in results:
        ctl.tell(ctl.propose().cid, r)
    assert [e.index for e in ctl.ranked] == [2, 0, 3, 1]
    assert ctl.best().index == 2 and ctl.reference().index == 0


def test_the_same_function_under_another_text_is_a_cache_hit() -> None:
    ctl = Controller(SpaceConfig(population=1, init="seeds:backprop"), seed=0)
    run(ctl, 80, random.Random(0))
    trained = [e.cand for e in ctl.population]
    assert len({c.fkey for c in trained}) == len(trained)                 # no function trained twice
    assert ctl.function_hits > 0 and sum(ctl.hits.values()) == ctl.cache_hits
    assert all(c.fkey == P.function_key(c.text) for c in trained)
    # g and its id/left forms are one function: once the reference trained, they are hits, not candidates.
    assert not any(c.text in ("id(g)", "left(g, dact)") for c in trained[1:])


def test_ties_break_by_validation_loss_then_size() -> None:
    ctl = Controller(SpaceConfig(population=3, init="seeds:backprop,fa,dfa"), seed=0)
    cands = [ctl.propose() for _ in range(3)]                            # sizes: backprop 3, fa and dfa 7
    losses = {cands[0].cid: 0.5, cands[1].cid: 0.4, cands[2].cid: 0.4}
    for c in reversed(cands):
        ctl.tell(c.cid, EvalResult("ok", val_acc=0.9, val_loss=losses[c.cid]))
    order = [e.cand.cid for e in ctl.ranked]
    assert order[-1] == cands[0].cid                                       # the higher loss last, though smallest
    assert cands[0].size < cands[1].size == cands[2].size
    assert order[:2] == [cands[2].cid, cands[1].cid]                       # equal loss and size: earlier first
