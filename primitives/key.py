"""A canonical text and a stable hash of an equation, for caching and dedupe across processes and runs."""
from __future__ import annotations

import hashlib

from primitives.functions import ALIASES, FUNCTIONS
from primitives.tree import Node, display_name, nested


def _canon(node: Node) -> str:
    if node.arity == 0:
        return node.prim.name
    name = display_name(node.prim)
    if name in ("id", "left"):  # identity and keep-left's ignored argument change nothing computed
        return _canon(node.children[0])
    name = ALIASES.get(name, name)
    args = [_canon(c) for c in node.children]
    if FUNCTIONS[name].commutative:
        args.sort()
    return f"{name}({','.join(args)})"


def canonical(equation: list) -> str:
    """Text of what the equation computes: identities and ignored arguments dropped, commutative arguments sorted,
    aliases (norm_elem_2 = norm_fro) merged. Equal canonical text means equal function."""
    return _canon(nested(equation))


def key(equation: list) -> str:
    """A 16-hex-digit SHA-256 of ``canonical(equation)``: the same in every process, platform and run."""
    return hashlib.sha256(canonical(equation).encode()).hexdigest()[:16]
