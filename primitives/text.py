"""``parse``: the text form of an equation into a tree, by a hand-written parser that never evaluates input.

Grammar: ``expr := NAME | NAME "(" expr ("," expr)* ")"``. Names are operands (``g``, ``b_next``), running forms
(``mhat(dact)``) and functions (``norm_fro``, ``clip_0.1``). Overloads are resolved by the arguments' roles.
"""
from __future__ import annotations

import difflib
import re

from deap import gp

from primitives.functions import FUNCTIONS
from primitives.names import names_of
from primitives.operands import OPERANDS, RUNNING_FORMS, running_name
from primitives.pset import Equation, default_pset
from primitives.roles import Layer
from primitives.tree import Node, flatten, normalise

MAX_TEXT = 10_000
MAX_NESTING = 64
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)|(?P<punct>[(),]))")


class EquationError(ValueError):
    """A malformed equation; the message names the token, its position and a fix."""

    def __init__(self, message: str, token: str = "", position: int = -1) -> None:
        super().__init__(message)
        self.token, self.position = token, position


def _tokens(text: str) -> list[tuple[str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            rest = text[pos:].lstrip()
            if not rest:
                break
            at = len(text) - len(rest)
            raise EquationError(f"unexpected character {rest[0]!r} at position {at}: equations use names, "
                                f"parentheses and commas only, e.g. add(norm_fro(g), scale_0.5(g))", rest[0], at)
        out.append((m.group("name") or m.group("punct"), m.start(m.lastgroup)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, pset: gp.PrimitiveSetTyped) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.names = names_of(pset)
        self.index = self.names.index
        self.pset_name = pset.name

    def peek(self) -> tuple[str, int]:
        return self.toks[self.i] if self.i < len(self.toks) else ("", -1)

    def take(self, expected: str | None = None) -> tuple[str, int]:
        tok, pos = self.peek()
        if not tok:
            raise EquationError(f"unexpected end of equation; expected {expected or 'a name'}", "", -1)
        if expected is not None and tok != expected:
            raise EquationError(f"expected {expected!r} at position {pos} but found {tok!r}", tok, pos)
        self.i += 1
        return tok, pos

    def unknown(self, name: str, pos: int) -> EquationError:
        if name in FUNCTIONS or name in OPERANDS:
            hint = ("it is in the hard-threshold extension: use make_pset(hard_threshold=True)"
                    if name in FUNCTIONS else f"it is not in the primitive set {self.pset_name!r}")
        else:
            close = difflib.get_close_matches(name, list(self.index) + list(RUNNING_FORMS), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see primitives.OPERANDS and FUNCTIONS"
        return EquationError(f"unknown name {name!r} at position {pos}; {hint}", name, pos)

    def expr(self, depth: int = 0) -> Node:
        if depth > MAX_NESTING:
            raise EquationError(f"equation nested deeper than {MAX_NESTING} levels", "", self.peek()[1])
        name, pos = self.take()
        if name in "(),":
            raise EquationError(f"expected a name at position {pos} but found {name!r}", name, pos)
        if name in RUNNING_FORMS:
            return self.running_form(name, pos)
        key = self.function_name(name, pos)
        if self.peek()[0] != "(":
            if any(p.arity for p in self.index.get(key, ())):
                raise EquationError(f"function {name!r} at position {pos} needs arguments, "
                                    f"e.g. {self.names.example(key)}", name, pos)
            return self.terminal(name, pos)
        self.take("(")
        args = [self.expr(depth + 1)]
        while self.peek()[0] == ",":
            self.take(",")
            args.append(self.expr(depth + 1))
        self.take(")")
        return self.function(name, key, pos, args)

    def running_form(self, form: str, pos: int) -> Node:
        if self.peek()[0] != "(":
            raise EquationError(f"{form!r} at position {pos} needs an operand, e.g. {form}(dact)", form, pos)
        self.take("(")
        base, bpos = self.take()
        self.take(")")
        return self.terminal(running_name(form, base), bpos, form=form)

    def function_name(self, name: str, pos: int) -> str:
        key = self.names.function(name)
        if key is None:
            raise EquationError(f"unknown constant in {name!r} at position {pos}; {self.names.constants(name)}",
                                name, pos)
        return key

    def terminal(self, name: str, pos: int, form: str = "") -> Node:
        for prim in self.index.get(name, ()):
            if prim.arity == 0:
                return Node(prim, ())
        if form:
            raise EquationError(f"{name!r} at position {pos}: {form} applies to one batch-shaped operand, "
                                f"e.g. {form}(dact)", name, pos)
        raise self.unknown(name, pos)

    def function(self, name: str, key: str, pos: int, args: list[Node]) -> Node:
        overloads = [p for p in self.index.get(key, ()) if p.arity > 0]
        if not overloads:
            raise self.unknown(name, pos)
        if overloads[0].arity != len(args):
            raise EquationError(f"{key!r} at position {pos} takes {overloads[0].arity} argument(s), "
                                f"got {len(args)}, e.g. {self.names.example(key)}", name, pos)
        roles = tuple(a.role for a in args)
        for prim in overloads:
            if tuple(prim.args) == roles:
                return Node(prim, tuple(args))
        got = ", ".join(r.__name__ for r in roles)
        valid = "; ".join(f"{key}({', '.join(r.__name__ for r in p.args)})" for p in overloads[:4])
        raise EquationError(f"{key!r} at position {pos} cannot take ({got}): shapes do not match; valid: {valid}",
                            name, pos)


def parse(text: str, pset: gp.PrimitiveSetTyped | None = None) -> Equation:
    """Parse the text form into a normalised ``Equation``. Never evaluates the text.

    The default set is the paper set plus the hard-threshold extension, so every name of this package parses;
    pass ``pset`` to restrict. Raises ``EquationError`` naming the token and its position.
    """
    if not isinstance(text, str):
        raise EquationError(f"an equation is text, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise EquationError(f"equation text longer than {MAX_TEXT} characters")
    parser = _Parser(text, pset if pset is not None else default_pset(True))
    if not parser.toks:
        raise EquationError("empty equation; write one such as left(norm_fro(g), g)")
    node = parser.expr()
    tok, pos = parser.peek()
    if tok:
        raise EquationError(f"unexpected {tok!r} at position {pos} after a complete equation", tok, pos)
    if node.role is not Layer:
        raise EquationError(f"the equation computes a {node.role.__name__}-shaped value; it must be Layer-shaped "
                            f"(layer i's backward value), e.g. map b_next down with mm(b_next, T(W))")
    return Equation(flatten(normalise(node)))

