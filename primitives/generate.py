"""Random equations (paper form or free form) and the paper's mutation, over any primitive set of this package.

Both work from per-set tables of which component can still be completed, so they never hit DEAP's typed
``generate`` IndexError: a choice is offered only when some completion of it exists within the limits.
"""
from __future__ import annotations

import random
from collections import defaultdict

from deap import gp

from primitives.pset import Equation, default_pset
from primitives.roles import Layer
from primitives.tree import MAX_BLOCKS, Node, display_name, flatten, normalise, per_pset

FORMS = ("paper", "free")


class _Tables:
    def __init__(self, pset: gp.PrimitiveSetTyped) -> None:
        prims = [p for p in pset.mapping.values()]
        self.operands: dict[type, list] = defaultdict(list)
        self.unary: dict[type, list] = defaultdict(list)
        self.binary: dict[type, list] = defaultdict(list)
        self.same_kind: dict[tuple, list] = defaultdict(list)  # (arg roles, return role) -> components
        for p in prims:
            {0: self.operands, 1: self.unary, 2: self.binary}[p.arity][p.ret].append(p)
            self.same_kind[(tuple(getattr(p, "args", ())), p.ret)].append(p)
        roles = set(self.operands) | set(self.unary) | set(self.binary)
        # Paper form: a unary slot u(op) needs an operand of u's argument role.
        self.slot = {r: [u for u in self.unary[r] if self.operands[u.args[0]]] for r in roles}
        # chain[d][r]: binaries f returning r that head a chain of exactly d blocks; lift[d][r]: unaries u1 returning
        # r whose argument role heads a chain of d blocks.
        self.chain: list[dict[type, list]] = [{}]
        self.lift: list[dict[type, list]] = [{}]
        for d in range(1, MAX_BLOCKS + 1):
            lift = {r: [u for u in self.unary[r] if self.chain[d - 1].get(u.args[0])] for r in roles} if d > 1 else {}
            self.lift.append(lift)
            self.chain.append({r: [f for f in self.binary[r] if self.slot[f.args[1]]
                                   and (self.slot[f.args[0]] if d == 1 else lift[f.args[0]])] for r in roles})
        # Free form: the smallest size and depth of a tree of each role (a fixpoint over the grammar).
        inf = float("inf")
        self.min_size = {r: (1 if self.operands[r] else inf) for r in roles}
        self.min_depth = dict(self.min_size)
        changed = True
        while changed:
            changed = False
            for p in prims:
                if p.arity:
                    size = 1 + sum(self.min_size[a] for a in p.args)
                    depth = 1 + max(self.min_depth[a] for a in p.args)
                    if size < self.min_size[p.ret] or depth < self.min_depth[p.ret]:
                        self.min_size[p.ret] = min(size, self.min_size[p.ret])
                        self.min_depth[p.ret] = min(depth, self.min_depth[p.ret])
                        changed = True

    def alternatives(self, node) -> list:
        return [p for p in self.same_kind[(tuple(getattr(node, "args", ())), node.ret)] if p.name != node.name]


_tables = per_pset(_Tables)


def _paper(rng: random.Random, t: _Tables, blocks: int) -> Node:
    def slot(role: type) -> Node:
        u = rng.choice(t.slot[role])
        return Node(u, (Node(rng.choice(t.operands[u.args[0]]), ()),))

    def block(role: type, d: int) -> Node:
        f = rng.choice(t.chain[d][role])
        if d == 1:
            first = slot(f.args[0])
        else:
            u1 = rng.choice(t.lift[d][f.args[0]])
            first = Node(u1, (block(u1.args[0], d - 1),))
        return Node(f, (first, slot(f.args[1])))

    return block(Layer, blocks)


def _free(rng: random.Random, t: _Tables, max_depth: int, max_size: int) -> Node:
    def fits(p, depth: int, size: int) -> bool:
        return (1 + max(t.min_depth[a] for a in p.args) <= depth
                and 1 + sum(t.min_size[a] for a in p.args) <= size)

    def grow(role: type, depth: int, size: int, root: bool) -> Node:
        kinds = []
        if t.operands[role] and not root:
            kinds.append(("operand", 0.4))
        unary = [u for u in t.unary[role] if display_name(u) != "id" and fits(u, depth, size)]
        binary = [b for b in t.binary[role] if fits(b, depth, size)]
        kinds += [(k, w) for k, w, opts in (("unary", 0.3, unary), ("binary", 0.3, binary)) if opts]
        kind = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        if kind == "operand":
            return Node(rng.choice(t.operands[role]), ())
        if kind == "unary":
            u = rng.choice(unary)
            return Node(u, (grow(u.args[0], depth - 1, size - 1, False),))
        b = rng.choice(binary)
        a0, a1 = b.args
        first = grow(a0, depth - 1, size - 1 - t.min_size[a1], False)
        used = len(flatten(first))
        return Node(b, (first, grow(a1, depth - 1, size - 1 - used, False)))

    return grow(Layer, max_depth, max_size, True)


def random_equation(rng: random.Random, pset: gp.PrimitiveSetTyped | None = None, *, form: str = "paper",
                    blocks: int | None = None, max_depth: int = 6, max_size: int = 15) -> Equation:
    """A random equation. ``form="paper"``: ``f(u1(op1), u2(op2))`` chained ``blocks`` times (default: 1 to 3,
    uniformly). ``form="free"``: any well-typed tree with at least one function, at most ``max_depth`` levels and
    ``max_size`` nodes, grown with probabilities 0.4/0.3/0.3 for operand/unary/binary at each node."""
    t = _tables(pset if pset is not None else default_pset())
    if form == "paper":
        options = [d for d in range(1, MAX_BLOCKS + 1) if t.chain[d].get(Layer)]
        if blocks is not None and blocks not in options:
            raise ValueError(f"blocks={blocks} is not possible; use one of {options}")
        return Equation(flatten(_paper(rng, t, blocks if blocks is not None else rng.choice(options))))
    if form == "free":
        if max_depth < 2 or max_size < 2:
            raise ValueError(f"free form needs max_depth >= 2 and max_size >= 2, got {max_depth} and {max_size}")
        return Equation(flatten(normalise(_free(rng, t, max_depth, max_size))))
    raise ValueError(f"unknown form {form!r}; use one of {FORMS}")


def mutate(equation: list, rng: random.Random, k: int = 1, pset: gp.PrimitiveSetTyped | None = None) -> Equation:
    """The paper's mutation, applied ``k`` times: pick a component (operand, unary or binary function, the root
    included) uniformly among those that have an alternative, and swap it for a different random component of the
    same kind and signature. Returns a new equation; shape roles, and with them feasibility by type, are kept."""
    t = _tables(pset if pset is not None else default_pset())
    out = list(equation)
    for _ in range(k):
        options = [(i, alts) for i, node in enumerate(out) if (alts := t.alternatives(node))]
        if not options:
            break
        i, alts = rng.choice(options)
        out[i] = rng.choice(alts)
    return Equation(out)
