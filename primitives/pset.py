"""The DEAP primitive sets of the DSL, and the plain ``Equation`` and ``Fitness`` classes (no ``creator``).

Every function is registered once per shape role it accepts; the DEAP name carries the signature
(``abs:Layer``, ``mm:Next,WeightT``) and the text form shows only the part before the colon.
"""
from __future__ import annotations

import functools

from deap import base, gp

from primitives.formatting import format_equation
from primitives.functions import BINARY, HARD_THRESHOLD_UNARY, UNARY, Fn
from primitives.operands import OPERANDS
from primitives.roles import PRODUCTS, ROLES, TRANSPOSE, Layer


class Fitness(base.Fitness):
    """Validation accuracy, maximised."""

    weights = (1.0,)


class Equation(gp.PrimitiveTree):
    """A backward equation: a DEAP prefix tree over a primitive set of this package, with a fitness slot."""

    def __init__(self, content) -> None:
        super().__init__(content)
        self.fitness = Fitness()

    def __str__(self) -> str:
        return format_equation(self)


def _add_function(pset: gp.PrimitiveSetTyped, fn: Fn) -> None:
    if fn.kind == "transpose":
        for src, dst in TRANSPOSE.items():
            pset.addPrimitive(fn.impl, [src], dst, name=f"{fn.name}:{src.__name__}")
    elif fn.kind == "product":
        for (left, right), result in PRODUCTS.items():
            pset.addPrimitive(fn.impl, [left, right], result, name=f"{fn.name}:{left.__name__},{right.__name__}")
    else:
        for role in ROLES:
            pset.addPrimitive(fn.impl, [role] * fn.arity, role, name=f"{fn.name}:{role.__name__}")


def make_pset(hard_threshold: bool = False) -> gp.PrimitiveSetTyped:
    """A new strongly-typed primitive set whose trees compute layer i's backward value (role ``Layer``).

    ``hard_threshold=True`` adds FTPROP-MB's tanh, sech2, sech2_01, win11 and win01 to the paper's set.
    """
    pset = gp.PrimitiveSetTyped("hard_threshold" if hard_threshold else "paper", [], Layer)
    for op in OPERANDS.values():
        pset.addTerminal(op.name, op.role, name=op.name)
    for fn in UNARY.values():
        _add_function(pset, fn)
    if hard_threshold:
        for fn in HARD_THRESHOLD_UNARY.values():
            _add_function(pset, fn)
    for fn in BINARY.values():
        _add_function(pset, fn)
    return pset


@functools.cache
def default_pset(hard_threshold: bool = False) -> gp.PrimitiveSetTyped:
    """A shared read-only instance of ``make_pset(hard_threshold)`` for the package's defaults."""
    return make_pset(hard_threshold)

