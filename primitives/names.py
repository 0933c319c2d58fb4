"""The names of one primitive set as the parser sees them: overloads by text name, the families of constants
(``clip_0.1``, ``shift_-10``) and, for error messages, a smallest whole equation that uses each function."""
from __future__ import annotations

import re
from collections import defaultdict

from deap import gp

from primitives.functions import num
from primitives.roles import Layer
from primitives.tree import display_name, per_pset

# A name that ends in a constant: the stem up to the last underscore, then a number (or inf) as written.
CONSTANT_SUFFIX = re.compile(r"^(?P<stem>.*_)(?P<value>-?(?:inf|(?:\d+\.?\d*|\.\d+)(?:e-?\d+)?))$")
_HOLE = "@"  # the place of the argument in a context, in example texts; never a character of a name


class Names:
    """Per-set tables, built once per set (``names_of``)."""

    def __init__(self, pset: gp.PrimitiveSetTyped) -> None:
        index: dict[str, list] = defaultdict(list)
        for prim in pset.mapping.values():
            index[display_name(prim)].append(prim)
        self.index = dict(index)
        self.families = _families(self.index)
        self._smallest, self._holes = _smallest_trees(list(pset.mapping.values()))

    def function(self, name: str) -> str | None:
        """The set's name of function ``name``: itself, or the family member with the same constant (``clip_1.0``
        is ``clip_1``); None for a family's stem with any other constant (``constants`` says which it takes)."""
        if name in self.index:
            return name
        m = CONSTANT_SUFFIX.match(name)
        if m is None or m.group("stem") not in self.families:
            return name
        return self.families[m.group("stem")].get(float(m.group("value")))

    def constants(self, name: str) -> str:
        """What the family of ``name`` takes, as a user reads it: ``clip takes 0.01, 0.1, 0.5, 1``."""
        stem = CONSTANT_SUFFIX.match(name).group("stem")
        return f"{stem[:-1]} takes {', '.join(_suffixes(self.index, stem))}"

    def example(self, name: str) -> str:
        """A smallest whole, Layer-shaped equation that applies function ``name`` to arguments of a valid role."""
        best = None
        for prim in self.index.get(name, ()):
            if prim.arity and prim.ret in self._holes and all(a in self._smallest for a in prim.args):
                size = self._holes[prim.ret][0] + 1 + sum(self._smallest[a][0] for a in prim.args)
                if best is None or size < best[0]:
                    call = f"{name}({', '.join(self._smallest[a][1] for a in prim.args)})"
                    best = (size, self._holes[prim.ret][1].replace(_HOLE, call))
        return best[1] if best else name


def _suffixes(index: dict[str, list], stem: str) -> list[str]:
    """Every member of a family as written after its stem (a matrix norm's ``fro`` included), in set order."""
    return [n[len(stem):] for n, prims in index.items()
            if n.startswith(stem) and "_" not in n[len(stem):] and any(p.arity for p in prims)]


def _families(index: dict[str, list]) -> dict[str, dict[float, str]]:
    """stem (``clip_``) -> {constant: name} for every stem with a constant written as ``num`` writes it (so the
    ``01`` of ``sech2_01`` is part of a name, not a constant)."""
    families: dict[str, dict[float, str]] = defaultdict(dict)
    for name, prims in index.items():
        m = CONSTANT_SUFFIX.match(name)
        if m and any(p.arity for p in prims) and num(float(m.group("value"))) == m.group("value"):
            families[m.group("stem")][float(m.group("value"))] = name
    return dict(families)


def _smallest_trees(prims: list) -> tuple[dict[type, tuple[int, str]], dict[type, tuple[int, str]]]:
    """For each role: the smallest tree of that role (size, text), and the smallest Layer-shaped equation with a
    hole of that role (size without the hole, text with ``_HOLE``). Fixpoints over the grammar; ties go to the
    earlier primitive, so operands come in OPERANDS order."""
    smallest: dict[type, tuple[int, str]] = {}
    for p in prims:
        if p.arity == 0 and p.ret not in smallest:
            smallest[p.ret] = (1, p.name)
    changed = True
    while changed:
        changed = False
        for p in prims:
            if p.arity and all(a in smallest for a in p.args):
                size = 1 + sum(smallest[a][0] for a in p.args)
                if p.ret not in smallest or size < smallest[p.ret][0]:
                    smallest[p.ret] = (size, f"{display_name(p)}({', '.join(smallest[a][1] for a in p.args)})")
                    changed = True
    holes: dict[type, tuple[int, str]] = {Layer: (0, _HOLE)}
    changed = True
    while changed:
        changed = False
        for p in prims:
            if not p.arity or p.ret not in holes or not all(a in smallest for a in p.args):
                continue
            for i, role in enumerate(p.args):
                size = holes[p.ret][0] + 1 + sum(smallest[a][0] for j, a in enumerate(p.args) if j != i)
                if role not in holes or size < holes[role][0]:
                    args = [_HOLE if j == i else smallest[a][1] for j, a in enumerate(p.args)]
                    holes[role] = (size, holes[p.ret][1].replace(_HOLE, f"{display_name(p)}({', '.join(args)})"))
                    changed = True
    return smallest, holes


names_of = per_pset(Names)   # the tables of a set, built on first use
