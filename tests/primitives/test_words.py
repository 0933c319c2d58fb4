"""Equations in words, for reports: every function and operand has a phrase, and nesting reads unambiguously."""
import pytest

import primitives as P
from primitives.names import names_of
from primitives.words import FUNCTION_WORDS, OPERAND_WORDS

HARD = P.default_pset(True)


def said(text: str) -> str:
    return P.words(P.parse(text, HARD))


def test_the_seeds_read_as_their_papers_describe_them():
    assert said(P.SEEDS["backprop"]) == "g"
    assert said(P.SEEDS["backprop_fro"]) == "g divided by its Frobenius norm"
    assert said(P.SEEDS["ftp_sh"]) == "the post-activation gradient times the squared hyperbolic secant of the " \
                                     "pre-activation"
    assert said(P.SEEDS["sste"]) == "the post-activation gradient times the indicator that the pre-activation lies " \
                                   "in [-1, 1]"
    assert said(P.SEEDS["fa"]) == "(the matrix product of the next layer's backward value and the transpose of the " \
                                 "random matrix R) times the activation derivative"


def test_nested_phrases_are_parenthesised_where_they_could_be_misread():
    assert said("norm_fro(add(g, fa))") == "(g plus the feedback-alignment signal) divided by its Frobenius norm"
    assert said("mul(add(g, h), sgn(add(hp, dact)))") == \
        "(g plus the activation) times the sign of (the pre-activation plus the activation derivative)"
    assert said("add(sgn(g), h)") == "(the sign of g) plus the activation"      # "the sign of g plus h" is ambiguous
    assert said("add(h, sgn(g))") == "the activation plus the sign of g"        # nothing follows: no need
    assert said("shift_-0.5(scale_2(g))") == "(2 times g) minus 0.5"
    assert said("add(mhat(g), h)") == "(the running mean of g) plus the activation"


@pytest.mark.parametrize("name", sorted(P.FUNCTIONS))
def test_every_built_in_function_has_its_own_phrase(name):
    fn = P.FUNCTIONS[name]
    template = FUNCTION_WORDS[name].template
    used = [i for i in range(fn.arity) if "{%d}" % i in template]
    assert used == ([0] if name == "left" else list(range(fn.arity)))      # each argument read, left keeps one
    text = said(names_of(HARD).example(name))
    assert f"{name} of" not in text and "{" not in text                  # not the fallback, every slot filled


def test_every_operand_has_a_phrase_without_its_code_name():
    assert set(P.OPERANDS) == set(OPERAND_WORDS)
    for name, phrase in OPERAND_WORDS.items():
        assert "{" not in phrase.template and "_" not in phrase.template, name        # no code names (hp_next)
        assert phrase.template != name or name == "g", name                          # g is the paper's own word
    assert OPERAND_WORDS["bn(hp)"].template == "the pre-activation normalised by its running mean and standard deviation"


def test_a_registered_function_reads_by_its_name():
    P.register_function("softsign", 1, lambda x, ctx: x / (1 + x.abs()))
    try:
        assert P.words(P.parse("left(softsign(add(g, h)), g)")) == "softsign of (g plus the activation)"
    finally:
        P.unregister_function("softsign")
