"""Nested view of a prefix tree, its nodes' text names, and the paper's strict form ``f(u1(op1), u2(op2))``
chained 1 to 3 times.

The paper form is the default search space (Backprop Evolution §3.1): op1 is an operand or the previous block,
op2 is an operand. Every equation this package returns is *normalised*: if inserting identity unaries makes a tree
paper-form, the identities are there, so text round-trips exactly.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from deap import gp

MAX_BLOCKS = 3
T = TypeVar("T")


class Node(NamedTuple):
    prim: gp.Primitive | gp.Terminal
    children: tuple["Node", ...]

    @property
    def arity(self) -> int:
        return self.prim.arity

    @property
    def role(self) -> type:
        return self.prim.ret


def per_pset(build: Callable[[gp.PrimitiveSetTyped], T]) -> Callable[[gp.PrimitiveSetTyped], T]:
    """``build(pset)`` once per primitive set, for tables derived from a set (a set is not changed after
    ``make_pset`` builds it); a set nothing else holds is let go."""
    cache: "weakref.WeakKeyDictionary[gp.PrimitiveSetTyped, T]" = weakref.WeakKeyDictionary()

    def get(pset: gp.PrimitiveSetTyped) -> T:
        value = cache.get(pset)
        if value is None:
            value = cache[pset] = build(pset)
        return value
    return get


def display_name(node: gp.Primitive | gp.Terminal) -> str:
    """The text-form name of a node: ``abs`` for ``abs:Layer``, the operand name for a terminal."""
    return node.name.split(":", 1)[0]


def nested(prefix: list) -> Node:
    it = iter(prefix)

    def build() -> Node:
        prim = next(it)
        return Node(prim, tuple(build() for _ in range(prim.arity)))

    return build()


def flatten(node: Node) -> list:
    out = [node.prim]
    for child in node.children:
        out.extend(flatten(child))
    return out


def identity(child: Node) -> Node:
    role = child.role
    return Node(gp.Primitive(f"id:{role.__name__}", [role], role), (child,))


def paper_blocks(node: Node) -> int:
    """The number of binary blocks if ``node`` is a paper-form chain with explicit unaries, else 0."""
    if node.arity != 2:
        return 0
    u1, u2 = node.children
    if u1.arity != 1 or u2.arity != 1 or u2.children[0].arity != 0:
        return 0
    op1 = u1.children[0]
    if op1.arity == 0:
        return 1
    inner = paper_blocks(op1)
    return inner + 1 if inner else 0


def is_paper_form(equation: list) -> bool:
    """True if the equation is ``f(u1(op1), u2(op2))`` with 1 to 3 chained blocks."""
    return 1 <= paper_blocks(nested(equation)) <= MAX_BLOCKS


def _complete(node: Node) -> Node | None:
    if node.arity != 2:
        return None
    a, b = node.children
    if a.arity == 0:
        a = identity(a)
    elif a.arity == 2:
        inner = _complete(a)
        if inner is None:
            return None
        a = identity(inner)
    elif a.children[0].arity == 2:
        inner = _complete(a.children[0])
        if inner is None:
            return None
        a = Node(a.prim, (inner,))
    elif a.children[0].arity != 0:
        return None
    if b.arity == 0:
        b = identity(b)
    elif b.arity != 1 or b.children[0].arity != 0:
        return None
    return Node(node.prim, (a, b))


def normalise(node: Node) -> Node:
    """Insert identities where that makes the tree paper-form; otherwise return it unchanged."""
    done = _complete(node)
    if done is not None and 1 <= paper_blocks(done) <= MAX_BLOCKS:
        return done
    return node
