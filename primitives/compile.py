"""Compile an equation into a ``Rule``: a closure tree over torch ops, built once, called every training step.

The rule computes derived operands (``g``, ``gh``, ``fa``, ...) from the raw ones itself, once per call and only
those the equation reads, so a trainer supplies just ``Rule.inputs``. The ignored argument of ``left`` is not
compiled at all.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping, Sequence

from torch import Tensor

from primitives.context import LayerContext
from primitives.formatting import format_equation
from primitives.functions import FUNCTIONS
from primitives.operands import OPERANDS
from primitives.roles import Feedback, FeedbackT, Layer, Next, Out, Weight, WeightT
from primitives.text import parse
from primitives.tree import Node, display_name, nested

Env = MutableMapping[str, Tensor]
Closure = Callable[[Env, LayerContext], Tensor]

# How each derived operand is computed from others (reference §"Notation"; FA uses R in W's place).
_DERIVED: dict[str, Callable[[Env, LayerContext], Tensor]] = {
    "sgnW": lambda v, c: v["W"].sign(),
    "gh": lambda v, c: c.maps.down(v["b_next"], v["W"].transpose(0, 1)),
    "g": lambda v, c: v["gh"] * v["dact"],
    "fa": lambda v, c: c.maps.down(v["b_next"], v["R"].transpose(0, 1)),
    "fa_dact": lambda v, c: v["fa"] * v["dact"],
    "dfa": lambda v, c: c.maps.from_out(v["bL"], v["RL"]),
    "dfa_dact": lambda v, c: v["dfa"] * v["dact"],
}
_PRODUCT_MAPS = {(Next, WeightT): "down", (Layer, Weight): "up", (Out, Feedback): "from_out", (Layer, FeedbackT): "to_out"}
_BN_EPS = 1e-5


class Rule:
    """A compiled backward equation: ``rule(env, ctx) -> Tensor`` shaped like layer i.

    ``env`` maps raw operand names (``inputs``) to tensors and is extended in place with the derived operands.
    """

    def __init__(self, equation: Sequence, root: Closure, reads: frozenset[str], running: tuple[str, ...],
                 stochastic: bool, provided: frozenset[str] = frozenset()) -> None:
        self._equation = equation
        self.reads = reads            # operands the equation reads directly
        self.provided = provided      # derived operands the caller supplies itself (see ``given``)
        self.stochastic = stochastic  # uses noise or dropout (draws from ctx.generator)
        self._root, self._running = root, running
        inputs, prelude = _dependencies(reads, provided)
        self.inputs = inputs          # raw operands (and provided ones) the caller must supply
        self._prelude = tuple((name, _DERIVED[name]) for name in prelude)

    @functools.cached_property
    def text(self) -> str:
        """The equation's normalised text form. Formatted on first use only: a worker's equation arrives as text and
        is parsed once, so compiling does not format it back."""
        return format_equation(self._equation)

    def given(self, provided: frozenset[str]) -> "Rule":
        """The same rule for a caller that supplies the derived operands in ``provided`` itself (a trainer gets
        ``g`` from autograd for free): those are neither recomputed nor their own inputs asked for."""
        return Rule(self._equation, self._root, self.reads, self._running, self.stochastic, frozenset(provided))

    def __call__(self, env: Env, ctx: LayerContext) -> Tensor:
        for name, derive in self._prelude:
            env[name] = derive(env, ctx)
        for name in self._running:
            ctx.moments(name).update(env[name])
        return self._root(env, ctx)

    def __repr__(self) -> str:
        return f"Rule({self.text!r})"


def _terminal(name: str) -> Closure:
    op = OPERANDS[name]
    base = op.base
    if op.form == "mhat":
        return lambda v, c: c.stats[base].mean.expand_as(v[base])
    if op.form == "shat":
        return lambda v, c: c.stats[base].std().expand_as(v[base])
    if op.form == "bn":
        def bn(v: Env, c: LayerContext) -> Tensor:
            m = c.stats[base]
            return (v[base] - m.mean) / (m.std() + _BN_EPS)
        return bn
    return lambda v, c: v[name]


def _closure(node: Node, used: set[str], stochastic: list[bool]) -> Closure:
    if node.arity == 0:
        used.add(node.prim.name)
        return _terminal(node.prim.name)
    name = display_name(node.prim)
    fn = FUNCTIONS[name]
    stochastic[0] |= fn.stochastic
    if name in ("left", "id"):  # keep-left ignores its second argument: it is neither compiled nor computed
        return _closure(node.children[0], used, stochastic)
    if fn.arity == 1:
        x = _closure(node.children[0], used, stochastic)
        impl1 = fn.impl
        return lambda v, c: impl1(x(v, c), c)
    x = _closure(node.children[0], used, stochastic)
    y = _closure(node.children[1], used, stochastic)
    if fn.kind == "product":
        method = _PRODUCT_MAPS[tuple(node.prim.args)]
        return lambda v, c: getattr(c.maps, method)(x(v, c), y(v, c))
    impl2 = fn.impl
    return lambda v, c: impl2(x(v, c), y(v, c), c)


def _dependencies(names: frozenset[str], provided: frozenset[str] = frozenset()
                  ) -> tuple[frozenset[str], tuple[str, ...]]:
    """Raw inputs (given what the caller provides) and the derived operands in computation order."""
    order: list[str] = []
    raw: set[str] = set()

    def visit(name: str) -> None:
        op = OPERANDS[name]
        if op.form:
            visit(op.base)
        elif op.derived_from and name not in provided:
            for dep in op.derived_from:
                visit(dep)
            if name not in order:
                order.append(name)
        else:
            raw.add(name)

    for n in sorted(names):
        visit(n)
    return frozenset(raw), tuple(order)


def compile_equation(equation: list | str) -> Rule:
    """Compile an ``Equation`` (or its text, parsed once) into a ``Rule``. Costs microseconds: the tree is walked
    once, and nothing is formatted (``Rule.text`` is formatted on first use)."""
    eq = tuple(parse(equation) if isinstance(equation, str) else equation)  # a copy: the caller may edit its list
    used: set[str] = set()
    stochastic = [False]
    root = _closure(nested(eq), used, stochastic)
    running = tuple(sorted({OPERANDS[n].base for n in used if OPERANDS[n].form}))
    return Rule(eq, root, frozenset(used), running, stochastic[0])

