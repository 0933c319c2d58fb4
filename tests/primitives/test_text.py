"""Text form: exact round trips, readable errors, and a parser that never executes input."""
import random

import pytest
from hypothesis import given, settings, strategies as st

import primitives as P
from tests.primitives.table1 import FREE_FORM, PAPER_FORM

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=300, deadline=None)
@given(seed=seeds, form=st.sampled_from(["paper", "free"]), hard=st.booleans())
def test_random_equations_round_trip_through_text(seed, form, hard):
    pset = P.default_pset(hard)
    eq = P.random_equation(random.Random(seed), pset, form=form)
    text = P.format(eq)
    back = P.parse(text, pset)
    assert list(back) == list(eq)
    assert P.format(back) == text
    assert P.key(back) == P.key(eq)


@settings(max_examples=200, deadline=None)
@given(seed=seeds)
def test_mutants_round_trip_through_text(seed):
    rng = random.Random(seed)
    eq = P.mutate(P.random_equation(rng), rng, k=rng.randint(1, 3))
    assert list(P.parse(P.format(eq))) == list(eq)


def test_paper_form_hides_identities_and_free_form_keeps_them():
    eq = P.parse("left(norm_fro(g), g)")
    assert len(eq) == 5 and P.is_paper_form(eq)            # left(norm_fro(g), id(g))
    assert P.format(eq) == "left(norm_fro(g), g)"
    free = P.parse("id(id(g))")
    assert not P.is_paper_form(free) and P.format(free) == "id(id(g))"


def test_constants_accept_either_spelling():
    assert P.format(P.parse("left(clip_1.0(g), g)")) == "left(clip_1(g), g)"
    assert P.format(P.parse("mul(scale_2.0(g), shift_-10.0(h))")) == "mul(scale_2(g), shift_-10(h))"


FAMILIES = {   # each parametrised family and its constants, as the README lists them
    "scale": "0.01, 0.1, 0.5, 2, 10", "shift": "-10, -1, -0.5, -0.1, -0.01, 0.01, 0.1, 0.5, 1, 2, 10",
    "addnoise": "0.01, 0.1, 0.5, 1", "mulnoise": "0.01, 0.1, 0.5, 1", "drop": "0.01, 0.1, 0.3",
    "clip": "0.01, 0.1, 0.5, 1", "norm_elem": "0, 1, 2, inf, -inf", "norm_row": "0, 1, 2, inf, -inf",
    "norm_col": "0, 1, 2, inf, -inf", "norm": "fro, 1, inf, -inf",
}


@pytest.mark.parametrize("family, constants", FAMILIES.items())
@pytest.mark.parametrize("value", ["1.000001", "-0.5000001", "-3", "7", "0.30000001"])
def test_a_constant_outside_its_family_is_refused_with_the_valid_ones(family, constants, value):
    name = f"{family}_{value}"
    with pytest.raises(P.EquationError) as info:
        P.parse(f"add(g, {name}(g))")
    assert str(info.value) == f"unknown constant in {name!r} at position 7; {family} takes {constants}"
    assert info.value.token == name and info.value.position == 7
    with pytest.raises(P.EquationError, match=f"unknown constant in '{name}'"):
        P.parse(f"left({name}, g)")                      # the same without its argument


@pytest.mark.parametrize("family, constants", FAMILIES.items())
def test_every_constant_of_a_family_parses_in_any_spelling_of_its_value(family, constants):
    for constant in constants.split(", "):
        if constant == "fro":
            continue
        for spelling in {constant, repr(float(constant)), f"{float(constant):e}".replace("e+", "e")}:
            assert P.format(P.parse(f"left({family}_{spelling}(g), g)")) == f"left({family}_{constant}(g), g)"


def test_names_that_end_in_digits_are_not_constants():
    with pytest.raises(P.EquationError, match="unknown name 'sech2_1'.*did you mean sech2_01"):
        P.parse("mul(gh, sech2_1(hp))")                 # sech2_01 is a name, not sech2 of the constant 1


def suggested(text: str, pset) -> str:
    with pytest.raises(P.EquationError) as info:
        P.parse(text, pset)
    message = str(info.value)
    assert "\n" not in message and "e.g. " in message, message
    return message.split("e.g. ", 1)[1]


@pytest.mark.parametrize("hard", [False, True])
def test_a_function_without_its_arguments_gets_an_example_that_parses(hard):
    pset = P.make_pset(hard)
    names = {P.display_name(p) for p in pset.mapping.values() if p.arity}
    assert {"mm", "T", "add", "clip_1", "norm_fro"} <= names
    for name in sorted(names):
        for text in (name, f"add(g, {name})", f"{name}(g, g, g)"):
            example = suggested(text, pset)
            assert f"{name}(" in example and P.format(P.parse(example, pset)), (text, example)
    assert suggested("mm", pset) in ("mm(bL, RL)", "mm(b_next, T(W))", "mm(hp_next, T(W))")
    assert suggested("mhat", pset) == "mhat(dact)" and P.parse("left(mhat(dact), g)", pset)


@pytest.mark.parametrize("text, token, position", [
    ("add(norm_fro(g), foo)", "foo", 17),
    ("add(nrom_fro(g), g)", "nrom_fro", 4),
    ("left(g, g))", ")", 10),
    ("left(g; g)", ";", 6),
])
def test_errors_name_the_token_and_its_position(text, token, position):
    with pytest.raises(P.EquationError) as info:
        P.parse(text)
    assert info.value.token == token and info.value.position == position
    assert repr(token) in str(info.value) and f"position {position}" in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_names_suggest_close_ones():
    with pytest.raises(P.EquationError, match="did you mean norm_fro"):
        P.parse("left(nrom_fro(g), g)")


def test_shape_mismatches_are_rejected_with_the_valid_signatures():
    with pytest.raises(P.EquationError, match=r"'mm' at position 0 cannot take \(Next, Weight\).*mm\(Next, WeightT\)"):
        P.parse("mm(b_next, W)")
    with pytest.raises(P.EquationError, match="Next-shaped value; it must be Layer-shaped"):
        P.parse("mul(b_next, hp_next)")
    with pytest.raises(P.EquationError, match="takes 2 argument"):
        P.parse("add(g)")


def test_hard_threshold_names_need_the_extension():
    assert P.format(P.parse("mul(gh, sech2(hp))")) == "mul(gh, sech2(hp))"   # the default set has every name
    with pytest.raises(P.EquationError, match="hard-threshold extension"):
        P.parse("mul(gh, sech2(hp))", P.make_pset())


@pytest.mark.parametrize("hostile", [
    "__import__('os').system('touch /tmp/pwned_by_parse')",
    "__class__", "g.__class__", "eval(g)", "exec", "lambda: 0", "open('/etc/passwd')", "g + h", "1 + 1",
    "add(g, __builtins__)", "neg(sys)", "(" * 5000 + "g" + ")" * 5000, "", "   ", "add(g,", "g" * 20_000,
])
def test_hostile_text_raises_the_clear_error_and_runs_nothing(hostile, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(P.EquationError):
        P.parse(hostile)
    assert not (tmp_path / "pwned_by_parse").exists()


def test_non_text_is_rejected():
    with pytest.raises(P.EquationError, match="equation is text"):
        P.parse(42)


def test_table1_paper_and_free_forms_are_classified():
    for text in PAPER_FORM.values():
        assert P.is_paper_form(P.parse(text)), text
    for text in FREE_FORM.values():
        assert not P.is_paper_form(P.parse(text)), text


def test_latex_reads_like_the_paper():
    assert P.latex(P.parse("add(norm_fro(g), scale_0.5(g))")) == r"\frac{g}{\|g\|_{F}} + 0.5\,g"
    assert P.latex(P.parse("left(g, h)")) == "g"
    assert P.latex(P.parse("mul(mm(b_next, T(W)), dact)")) == r"\left(b^{p}_{i+1} \cdot W^{\top}\right) \odot \sigma'"
    assert r"\hat{m}(\sigma')" in P.latex(P.parse("add(g, mhat(dact))"))
