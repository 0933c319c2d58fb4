"""The reading a campaign's README gives of a table is generated from its statistics: a rule that beats both
controls is named with its Holm-corrected p-values, one that does not is not, and a search's win that fresh seeds do
not confirm is said not to hold up."""
from __future__ import annotations

import pytest

from evaluators import EvalResult, TaskSpec
from gp_backprop.campaign.reading import reading
from gp_backprop.funnel import Cell, Finalist, Setup, compare

A1 = Setup("A1", "sgd", "the search setting", TaskSpec())
A2 = Setup("A2", "sgd", "a wider model", TaskSpec())
REF = [60.0, 61.0, 60.5, 60.2, 60.8]
FRO = [62.1, 62.9, 62.7, 62.0, 62.9]


def cell(key: str, setup: Setup, accs: list[float], control: str = "", fitness: float = 0.6) -> Cell:
    return Cell(Finalist(key, key, key, fitness, control=control), setup,
                [EvalResult("ok", test_acc=a / 100) for a in accs])


def table(setup: Setup, strong: list[float], weak: list[float]) -> list[Cell]:
    return [cell("ref", setup, REF, "backprop (reference)"), cell("fro", setup, FRO, "g/||g||_F"),
            cell("strong", setup, strong, fitness=0.64), cell("weak", setup, weak, fitness=0.63)]


def test_a_rule_that_beats_both_controls_is_named_with_its_corrected_p():
    strong = [x + d for x, d in zip(FRO, [1.0, 1.1, 0.9, 1.05, 0.95])]       # ~+1 over g/||g||_F on every seed
    weak = [x + d for x, d in zip(REF, [0.3, -0.2, 0.4, 0.1, 0.0])]
    cells = table(A1, strong, weak) + table(A2, FRO, weak)
    lines = reading(cells, ("backprop", 0.61))
    c = compare(cells)[("strong", "A1 SGD", "fro")]
    assert "A1 SGD: rule 1 beats both controls: " in "\n".join(lines)
    p = "p < 0.001" if c.p_holm < 0.001 else f"p = {c.p_holm:.3f}"
    assert c.significant_win and f"{c.diff:+.2f} points against g/||g||_F ({p})" in "\n".join(lines)
    assert "Rule 1 beats both controls in A1 SGD, but not in A2 SGD." in lines
    assert "A2 SGD: no rule beats both controls at p < 0.05 after Holm's correction." in lines
    partial = next(line for line in lines if line.startswith("A2 SGD: rule 1 beats "))     # equal to g/||g||_F
    assert "against backprop (reference)" in partial and ", but not +0.00 points against g/||g||_F" in partial
    assert any(line.startswith("A1 SGD: rule 2 is worse: ") and "against g/||g||_F" in line for line in lines)
    assert lines[-1] == ("In the searches, 2 of the 2 rules scored above backprop's search fitness (0.6100); on fresh "
                         "seeds in A1 SGD, 1 of them beat it at p < 0.05 (rule 2 did not hold up).")


def test_no_win_is_said_in_one_sentence():
    same = [x + d for x, d in zip(REF, [0.1, -0.1, 0.2, -0.2, 0.0])]
    lines = reading(table(A1, same, same))
    assert "No rule beats both controls at p < 0.05 after Holm's correction in any of these setups (A1 SGD)." in lines
    assert not any("beats both controls:" in line for line in lines)


@pytest.mark.parametrize("controls", [1, 3])
def test_the_count_of_controls_is_said_as_it_is(controls):
    names = ["backprop (reference)", "g/||g||_F", "fa"][:controls]
    cells = [cell(n, A1, [x + i for x in REF], n) for i, n in enumerate(names)] + [cell("r", A1, REF)]
    assert any(("the control" if controls == 1 else "every control") in line for line in reading(cells))


def test_rows_that_did_not_train_on_every_seed_are_named_with_their_statuses():
    stopped = [EvalResult("diverged", message="step 7's training loss 14.3 > 4 x its start 2.31")] * 5
    broken = Cell(Finalist("fro", "fro", "fro", control="g/||g||_F"), A2, stopped)
    half = Cell(Finalist("r", "r", "r", 0.64), A2, [EvalResult("ok", test_acc=0.6)] * 3 + stopped[:2])
    cells = [cell("ref", A2, REF, "backprop (reference)"), broken, half]
    lines = reading(cells)
    assert lines[1] == ("A2 SGD: did not train on every seed at the lr each row was tuned to on its dataset in the "
                        "search's setting (such a seed counts as 0 %): g/||g||_F (diverged on 5 of 5 seeds); rule 1 "
                        "(diverged on 2 of 5 seeds).")
    assert not any("did not train" in line for line in reading(table(A1, FRO, REF)))
