"""Adding a function to the DSL. ``register_function`` first checks it as gplearn's ``make_function`` does (arity,
output shape, finite values on ordinary inputs) and names the failed check; ``unregister_function`` takes it out."""
from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable

import torch
from torch import Tensor

from primitives.functions import BINARY, FUNCTIONS, UNARY, Fn
from primitives.operands import OPERANDS, RUNNING_FORMS
from primitives.probe import Probe, make_probe
from primitives.pset import default_pset
from primitives.roles import ROLES, TRANSPOSE
from primitives.text import EquationError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")   # what the parser reads as one name
_REGISTERED: set[str] = set()                        # names added by register_function (the only removable ones)


@functools.cache
def _probes() -> tuple[Probe, Probe]:
    # float32, as networks train: a function that overflows there is caught here.
    return make_probe("dense", dtype=torch.float32), make_probe("conv", dtype=torch.float32)


def _values(probe: Probe) -> dict[type, Tensor]:
    """A benign random value of every role, from one probe (a real dense or conv layer pair)."""
    t = probe.tensors
    by_name = {"Layer": t["hp"], "Next": t["b_next"], "Out": t["bL"], "Weight": t["W"],
               "WeightT": t["W"].transpose(0, 1), "Feedback": t["RL"], "FeedbackT": t["RL"].transpose(0, 1)}
    return {role: by_name[role.__name__] for role in ROLES}


def _fail(fn: Fn, check: str, detail: str) -> EquationError:
    return EquationError(f"function {fn.name!r} fails the {check} check: {detail}", fn.name)


def _check_arity(fn: Fn) -> None:
    if fn.arity not in (1, 2):
        raise _fail(fn, "arity", f"arity {fn.arity!r}; the DSL has unary (1) and binary (2) functions")
    try:
        signature = inspect.signature(fn.impl)
    except (TypeError, ValueError):  # some builtins have none: calling it below checks the arity instead
        return
    try:
        signature.bind(*range(fn.arity + 1))
    except TypeError:
        call = "impl(x, ctx)" if fn.arity == 1 else "impl(x, y, ctx)"
        raise _fail(fn, "arity", f"registered with arity {fn.arity}, it is called as {call}, but its signature is "
                                 f"{signature}") from None


def _inputs(fn: Fn, x: Tensor) -> list[tuple[str, list[Tensor]]]:
    """Ordinary inputs shaped like ``x``: the probe's random value (and, for y, the same value reversed along the
    sample axis), ones, minus ones and, unless the function may be non-finite there, zeros."""
    random = [x, x.flip(0)][:fn.arity]
    ones = torch.ones_like(x)
    cases = [("random", random), ("ones", [ones] * fn.arity), ("minus-ones", [-ones] * fn.arity)]
    if fn.finite_at_zero:
        cases.append(("zeros", [torch.zeros_like(x)] * fn.arity))
    return cases


def validate_function(fn: Fn) -> None:
    """Raise ``EquationError`` naming ``fn`` and the failed check unless ``fn`` takes ``arity`` values and the
    context, and gives, on every role it accepts of the dense and conv probes, a tensor of the role's shape (a
    transpose: the transposed role's) that is finite on ordinary inputs (zeros excepted if ``not finite_at_zero``).
    Matrix products are not checked: compile runs them through ``LayerContext.maps``, not ``impl``."""
    _check_arity(fn)
    if fn.kind == "product":
        return
    for probe in _probes():
        values, ctx = _values(probe), probe.context()
        where = f"{len(probe.layer_shape)}-D layer probe"
        for role, x in values.items():
            if fn.kind == "transpose" and role not in TRANSPOSE:
                continue
            expected = values[TRANSPOSE[role]].shape if fn.kind == "transpose" else x.shape
            for label, args in _inputs(fn, x):
                try:
                    with torch.no_grad():
                        out = fn.impl(*args, ctx)
                except Exception as exc:  # noqa: BLE001 (any failure of foreign code is the finding)
                    first = (str(exc).splitlines() or [""])[0]   # the message stays one line
                    raise _fail(fn, "call", f"raises on {label} {role.__name__} values ({where}): "
                                            f"{type(exc).__name__}: {first}") from None
                if not isinstance(out, Tensor) or out.shape != expected:
                    got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                    raise _fail(fn, "shape", f"gives {got} on {role.__name__} values of shape {tuple(x.shape)} "
                                             f"({where}); it must give {tuple(expected)}")
                if not bool(torch.isfinite(out).all()):
                    raise _fail(fn, "finite", f"gives inf or nan on {label} {role.__name__} values ({where})")


def _default_latex(name: str) -> Callable[..., str]:
    label = name.replace("_", r"\_")
    return lambda *args: rf"\operatorname{{{label}}}\left({', '.join(args)}\right)"


def register_function(name: str, arity: int, impl: Callable[..., Tensor], latex: Callable[..., str] | None = None,
                      *, commutative: bool = False, stochastic: bool = False, finite_at_zero: bool = True) -> Fn:
    """Add an elementwise function to the DSL, usable in every primitive set made afterwards (``make_pset``, and
    ``default_pset`` from now on) and so in ``parse``, ``compile``, ``mutate`` and ``latex``.

    ``impl(x, ctx)`` or ``impl(x, y, ctx)`` maps tensors of one role to a tensor of the same shape; ``latex`` maps the
    arguments' LaTeX to the result's (default ``\\operatorname{name}(...)``). The function is checked first
    (``validate_function``) and refused with an ``EquationError`` naming the failed check. Register in every process
    that parses (a worker imports the module that registers), before its sets are made.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise EquationError(f"function name {name!r} is not one the parser reads: use letters, digits, '_', '.', '-'",
                            str(name))
    if name in FUNCTIONS or name in OPERANDS or name in RUNNING_FORMS:
        fix = f"unregister_function({name!r}) first" if name in _REGISTERED else "choose another name"
        raise EquationError(f"function name {name!r} is taken: {fix}", name)
    fn = Fn(name, arity, impl, latex or _default_latex(name), commutative=commutative, stochastic=stochastic,
            finite_at_zero=finite_at_zero)
    validate_function(fn)
    (UNARY if arity == 1 else BINARY)[name] = FUNCTIONS[name] = fn
    _REGISTERED.add(name)
    default_pset.cache_clear()   # the shared sets are rebuilt with the new function on their next use
    return fn


def unregister_function(name: str) -> Fn:
    """Remove a function added by ``register_function`` (sets made since keep it; new ones do not)."""
    if name not in _REGISTERED:
        raise EquationError(f"{name!r} was not added by register_function; built-in functions stay", name)
    _REGISTERED.discard(name)
    fn = FUNCTIONS.pop(name)
    (UNARY if fn.arity == 1 else BINARY).pop(name)
    default_pset.cache_clear()
    return fn
