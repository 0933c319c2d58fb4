"""English export of equations, for reports next to their LaTeX: ``words(parse("left(norm_fro(g), g)"))`` reads
"g divided by its Frobenius norm". Every built-in function and operand has a phrase (``FUNCTION_WORDS``,
``OPERAND_WORDS``); a function added by ``register_function`` reads as "<name> of x"."""
from __future__ import annotations

from dataclasses import dataclass

from primitives.functions import (CLIP_VALUES, DROP_RATES, MATRIX_NORMS, NOISE_SCALES, SCALES, SHIFTS, VECTOR_NORMS,
                                  num)
from primitives.operands import OPERANDS, RUNNING_FORMS, running_name
from primitives.tree import Node, display_name, nested

__all__ = ["Phrase", "FUNCTION_WORDS", "OPERAND_WORDS", "words"]

ATOM, PREFIX, INFIX = "atom", "prefix", "infix"


@dataclass(frozen=True)
class Phrase:
    """A template over the arguments' phrases (``{0}``, ``{1}``) and how it reads inside another phrase: an ``atom``
    never needs parentheses, a ``prefix`` phrase ("the sign of x") only where something follows it, an ``infix`` one
    ("x plus y") always."""

    template: str
    kind: str = PREFIX


_FIXED = {
    "id": Phrase("{0}"), "left": Phrase("{0}"),            # transparent: they read as their (left) argument
    "T": Phrase("the transpose of {0}"), "inv": Phrase("the reciprocal of {0}"),
    "abs": Phrase("the absolute value of {0}"), "neg": Phrase("the negative of {0}"),
    "gt0": Phrase("the indicator that {0} is positive"), "relu": Phrase("the positive part of {0}"),
    "sgn": Phrase("the sign of {0}"), "sqrt_abs": Phrase("the square root of the absolute value of {0}"),
    "sgn_sqrt": Phrase("the signed square root of {0}"), "sq": Phrase("{0} squared", INFIX),
    "sgn_sq": Phrase("the signed square of {0}"), "cube": Phrase("{0} cubed", INFIX),
    "norm_fro": Phrase("{0} divided by its Frobenius norm", INFIX),
    "tanh": Phrase("the hyperbolic tangent of {0}"), "sech2": Phrase("the squared hyperbolic secant of {0}"),
    "sech2_01": Phrase("the squared hyperbolic secant of twice {0} minus one"),
    "win11": Phrase("the indicator that {0} lies in [-1, 1]"),
    "win01": Phrase("the indicator that {0} lies in [0, 1]"),
    "add": Phrase("{0} plus {1}", INFIX), "sub": Phrase("{0} minus {1}", INFIX), "mul": Phrase("{0} times {1}", INFIX),
    "div": Phrase("{0} divided by {1}", INFIX), "min": Phrase("the smaller of {0} and {1}"),
    "max": Phrase("the larger of {0} and {1}"), "mm": Phrase("the matrix product of {0} and {1}"),
}
_VECTOR_NORM = {0.0: "count of non-zero entries", 1.0: "L1 norm", 2.0: "L2 norm",
                float("inf"): "largest absolute entry", float("-inf"): "smallest absolute entry"}
_MATRIX_NORM = {1: "largest absolute column sum (matrix 1-norm)", float("inf"): "largest absolute row sum "
                "(matrix inf-norm)", float("-inf"): "smallest absolute row sum"}
_AXIS = {"elem": "{0} divided by its {p} over all entries", "row": "{0} with each row divided by its {p}",
         "col": "{0} with each column divided by its {p}"}


def _function_words() -> dict[str, Phrase]:
    """A phrase per built-in function: the fixed ones, then each family of constants from its own list."""
    out = dict(_FIXED)
    for a in SCALES:
        out[f"scale_{num(a)}"] = Phrase(f"{num(a)} times {{0}}", INFIX)
    for b in SHIFTS:
        out[f"shift_{num(b)}"] = Phrase(f"{{0}} {'plus' if b > 0 else 'minus'} {num(abs(b))}", INFIX)
    for s in NOISE_SCALES:
        out[f"addnoise_{num(s)}"] = Phrase(f"{{0}} plus Gaussian noise of standard deviation {num(s)}", INFIX)
        out[f"mulnoise_{num(s)}"] = Phrase(f"{{0}} with multiplicative Gaussian noise of standard deviation {num(s)}",
                                           INFIX)
    for d in DROP_RATES:
        out[f"drop_{num(d)}"] = Phrase(f"{{0}} with dropout at rate {num(d)}", INFIX)
    for c in CLIP_VALUES:
        out[f"clip_{num(c)}"] = Phrase(f"{{0}} clipped to [-{num(c)}, {num(c)}]", INFIX)
    for axis, template in _AXIS.items():
        for p in VECTOR_NORMS:
            out[f"norm_{axis}_{num(p)}"] = Phrase(template.replace("{p}", _VECTOR_NORM[p]), INFIX)
    for p in MATRIX_NORMS:
        if p != "fro":
            out[f"norm_{num(p)}"] = Phrase(f"{{0}} divided by its {_MATRIX_NORM[p]}", INFIX)
    return out


_BASE_WORDS = {
    "g": Phrase("g", ATOM), "gh": Phrase("the post-activation gradient", ATOM),
    "dact": Phrase("the activation derivative", ATOM), "hp": Phrase("the pre-activation", ATOM),
    "h": Phrase("the activation", ATOM), "fa": Phrase("the feedback-alignment signal", ATOM),
    "fa_dact": Phrase("the feedback-alignment signal times the activation derivative", INFIX),
    "dfa": Phrase("the direct-feedback-alignment signal", ATOM),
    "dfa_dact": Phrase("the direct-feedback-alignment signal times the activation derivative", INFIX),
    "hp_next": Phrase("the next layer's pre-activation", ATOM),
    "b_next": Phrase("the next layer's backward value", ATOM),
    "bL": Phrase("the output layer's backward value", ATOM), "W": Phrase("the weights W", ATOM),
    "sgnW": Phrase("the sign of W", PREFIX), "R": Phrase("the random matrix R", ATOM),
    "S": Phrase("the random sign matrix S", ATOM), "RL": Phrase("the random output matrix RL", ATOM),
}
_RUNNING_WORDS = {"mhat": Phrase("the running mean of {0}"), "shat": Phrase("the running standard deviation of {0}"),
                  "bn": Phrase("{0} normalised by its running mean and standard deviation", INFIX)}


def _operand_words() -> dict[str, Phrase]:
    """A phrase per operand: the base ones, and each running form over its base's phrase."""
    out = dict(_BASE_WORDS)
    for op in OPERANDS.values():
        if op.form in RUNNING_FORMS:
            out[running_name(op.form, op.base)] = _apply(_RUNNING_WORDS[op.form], [_BASE_WORDS[op.base]])
    return out


def _apply(phrase: Phrase, args: list[Phrase]) -> Phrase:
    """``phrase`` with its arguments filled in, each in parentheses where it could be misread."""
    if phrase.template == "{0}":
        return args[0]
    text = phrase.template
    for i, arg in enumerate(args):
        slot = "{%d}" % i
        if slot not in text:
            continue
        last = text.endswith(slot)
        wrap = arg.kind == INFIX or (arg.kind == PREFIX and not last)
        text = text.replace(slot, f"({arg.template})" if wrap else arg.template)
    return Phrase(text, phrase.kind)


FUNCTION_WORDS: dict[str, Phrase] = _function_words()
OPERAND_WORDS: dict[str, Phrase] = _operand_words()


def _fallback(name: str, arity: int) -> Phrase:
    return Phrase(f"{name} of {{0}}" if arity == 1 else f"{name} of {{0}} and {{1}}")


def _phrase(node: Node) -> Phrase:
    name = display_name(node.prim)
    if node.arity == 0:
        return OPERAND_WORDS.get(name) or Phrase(name, ATOM)
    template = FUNCTION_WORDS.get(name) or _fallback(name, node.arity)
    return _apply(template, [_phrase(c) for c in node.children])


def words(equation: list) -> str:
    """The equation as an English phrase (``left`` reads as what it keeps, as in its LaTeX)."""
    return _phrase(nested(equation)).template
