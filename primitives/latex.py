"""LaTeX export of equations, for reports (keep-left shows only what it keeps)."""
from __future__ import annotations

from primitives.functions import FUNCTIONS
from primitives.operands import OPERANDS
from primitives.tree import Node, display_name, nested


def _tex(node: Node) -> str:
    if node.arity == 0:
        return OPERANDS[node.prim.name].latex
    return FUNCTIONS[display_name(node.prim)].latex(*(_tex(c) for c in node.children))


def latex(equation: list) -> str:
    """LaTeX of the equation (math mode, without delimiters)."""
    return _tex(nested(equation))
