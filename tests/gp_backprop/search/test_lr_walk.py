"""The lr search of a candidate's fitness (README, "The protocol"): a bracket that walks outward while its best is at
an edge, down while everything diverged, within its reach, so that a rule is scored at its own step size."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from evaluators import EvalResult
from gp_backprop.search.lr_walk import LrWalk


def _walk(walk: LrWalk, accuracy: Callable[[float], float | None], centre: float = 1.0) -> list[float]:
    """Every factor the walk tries on a rule whose validation accuracy at factor f is ``accuracy(f)`` (None: its
    loss blew up at the first update), in order."""
    tried: list[tuple[float, EvalResult]] = []
    todo = walk.start(centre)
    while todo:
        for f in todo:
            acc = accuracy(f)
            tried.append((f, EvalResult("diverged", steps=1, message="step 2's training loss blew up") if acc is None
                          else EvalResult("ok", acc, val_loss=1.0)))
        nxt = walk.next(tried)
        todo = [] if nxt is None else [nxt]
    return [f for f, _ in tried]


def _peak(at: float, diverge_above: float = math.inf) -> Callable[[float], float | None]:
    """A rule whose accuracy peaks at factor ``at`` and that diverges above ``diverge_above``."""
    return lambda f: None if f > diverge_above else 0.6 - 0.05 * abs(math.log2(f / at))


def test_a_best_inside_the_bracket_ends_the_walk_at_once() -> None:
    assert _walk(LrWalk(), _peak(1.0)) == [0.5, 1.0, 2.0]


def test_the_walk_follows_a_rule_to_its_own_lr_either_way() -> None:
    assert _walk(LrWalk(), _peak(8.0)) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert _walk(LrWalk(), _peak(1 / 8)) == [0.5, 1.0, 2.0, 0.25, 0.125, 0.0625]


def test_a_rule_that_diverges_everywhere_it_was_tried_walks_down_to_where_it_trains() -> None:
    # g/||g||_F on the default task: diverged at x0.5, x1, x2 of backprop's lr, best at x0.25
    assert _walk(LrWalk(), _peak(0.25, diverge_above=0.3)) == [0.5, 1.0, 2.0, 0.25, 0.125]


def test_an_edge_within_seed_noise_of_the_best_walks_on_past_a_noisy_plateau() -> None:
    # the peak is at x4, but seed noise puts x2 a shade below x1: within the tolerance, so the walk goes on
    accs = {0.5: 0.40, 1.0: 0.452, 2.0: 0.448, 4.0: 0.47, 8.0: 0.43}
    assert _walk(LrWalk(), accs.get) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert _walk(LrWalk(tolerance=0.0), accs.get) == [0.5, 1.0, 2.0]


def test_a_rule_whose_values_are_nan_whatever_the_lr_does_not_walk() -> None:
    nan = [(f, EvalResult("diverged", steps=1, message="non-finite loss at epoch 1, step 2")) for f in (0.5, 1, 2)]
    assert LrWalk().next(nan) is None
    blown = [(f, EvalResult("diverged", steps=1, message="step 2's training loss 99 > 4 x its start 2.3"))
             for f in (0.5, 1, 2)]
    assert LrWalk().next(blown) == 0.25    # a finite blow-up shrinks with the lr: worth a step down


def test_coming_down_from_divergence_goes_on_down_past_a_run_a_hurdle_stopped() -> None:
    # backprop started 16x above its lr: diverged at x8, x16, x32, then too slow a start at x4 for the hurdle
    accs = {4.0: 0.15, 2.0: 0.55, 1.0: 0.6, 0.5: 0.58}
    hurdled = LrWalk()
    tried = [(f, EvalResult("diverged", steps=1)) for f in (8.0, 16.0, 32.0)]
    tried.append((4.0, EvalResult("hurdle", accs[4.0], steps=188, val_loss=2.0)))
    assert hurdled.next(tried) == 2.0
    assert _walk(LrWalk(), lambda f: None if f > 5 else accs.get(f, 0.5), centre=16.0) == \
        [8.0, 16.0, 32.0, 4.0, 2.0, 1.0, 0.5]


def test_a_best_that_a_hurdle_stopped_is_not_worth_a_step() -> None:
    stopped = [(f, EvalResult("hurdle", acc, val_loss=2.0)) for f, acc in ((0.5, 0.09), (1.0, 0.10), (2.0, 0.12))]
    assert LrWalk().next(stopped) is None
    assert LrWalk().next(stopped[:2] + [(2.0, EvalResult("ok", 0.12, val_loss=2.0))]) == 4.0


def test_the_walk_never_leaves_its_reach_and_reach_zero_keeps_the_bracket() -> None:
    assert _walk(LrWalk(reach=3), _peak(100.0)) == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert _walk(LrWalk(reach=3), lambda f: None) == [0.5, 1.0, 2.0, 0.25, 0.125]
    assert _walk(LrWalk(reach=0), _peak(100.0)) == [0.5, 1.0, 2.0]


def test_a_start_from_a_parents_lr_is_kept_inside_the_reach() -> None:
    walk = LrWalk(reach=2)
    assert walk.start(0.25) == [0.25, 0.5]             # 0.125 is past the reach of 2 halvings
    assert walk.start(1 / 64) == [0.5, 1.0, 2.0]   # nothing of it inside: the bracket around the search's lr
    assert _walk(LrWalk(), _peak(0.25), centre=0.25) == [0.125, 0.25, 0.5]


@pytest.mark.parametrize("step", [2.0, 3.0])
def test_the_best_of_what_was_tried_is_what_the_candidate_is_scored_by(step: float) -> None:
    walk = LrWalk((1 / step, 1.0, step), step=step)
    tried = [(f, EvalResult("ok", acc, val_loss=1.0)) for f, acc in ((1 / step, 0.3), (1.0, 0.5), (step, 0.4))]
    assert walk.next(tried) is None and tried[walk.best(tried)][0] == 1.0
