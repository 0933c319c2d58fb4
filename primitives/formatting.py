"""``format_equation``: an equation's text form, the inverse of ``parse`` (kept apart from the parser, which needs
``Equation``, so that ``Equation.__str__`` can use it)."""
from __future__ import annotations

from primitives.tree import Node, display_name, is_paper_form, nested


def _fmt(node: Node, hide_ids: bool) -> str:
    if node.arity == 0:
        return node.prim.name
    name = display_name(node.prim)
    if hide_ids and name == "id":
        return _fmt(node.children[0], hide_ids)
    return f"{name}({', '.join(_fmt(c, hide_ids) for c in node.children)})"


def format_equation(equation: list) -> str:
    """The text form; ``parse(format_equation(e)) == e`` for every normalised equation."""
    # In paper form the unary slots' identities are implied (parse puts them back), so they are not printed.
    return _fmt(nested(equation), is_paper_form(equation))
