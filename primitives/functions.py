"""The unary and binary functions of the DSL (Backprop Evolution, Appendix A) and the hard-threshold extension.

Each function is plain tensor math on the value and the layer's ``LayerContext``; each has a readable ASCII name
(constants are part of the name: ``clip_0.1``, ``shift_-10``) and a LaTeX template.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from primitives.context import EPS, LayerContext

# Constant sets. a (scale) and b (shift) are not given by the paper; these cover every constant in its Table 1
# (a: 0.5, 2; b: 2, -10, -0.5, -0.01, 0.01, 0.1) plus their neighbours on a log grid.
SCALES = (0.01, 0.1, 0.5, 2.0, 10.0)
SHIFTS = (-10.0, -1.0, -0.5, -0.1, -0.01, 0.01, 0.1, 0.5, 1.0, 2.0, 10.0)
NOISE_SCALES = (0.01, 0.1, 0.5, 1.0)
DROP_RATES = (0.01, 0.1, 0.3)
CLIP_VALUES = (0.01, 0.1, 0.5, 1.0)
VECTOR_NORMS = (0.0, 1.0, 2.0, math.inf, -math.inf)
MATRIX_NORMS = ("fro", 1, math.inf, -math.inf)


@dataclass(frozen=True)
class Fn:
    name: str
    arity: int
    impl: Callable[..., Tensor]   # (x, ctx) or (x, y, ctx)
    latex: Callable[..., str]     # LaTeX of the arguments' LaTeX
    kind: str = "elementwise"     # "elementwise", "transpose" or "product"
    commutative: bool = False
    stochastic: bool = False
    finite_at_zero: bool = True   # False: may give inf or nan where an argument is 0 (the registration check knows)


def num(c: float) -> str:
    """A constant as it appears in names and LaTeX: 0.01, 2, -10, inf, -inf."""
    if math.isinf(c):
        return "inf" if c > 0 else "-inf"
    return f"{c:g}"


def _p(s: str) -> str:
    """Parenthesise a LaTeX argument unless it is a single symbol or already a group."""
    simple = " " not in s and not s.startswith("-")
    return s if simple else rf"\left({s}\right)"


def _noise(x: Tensor, ctx: LayerContext) -> Tensor:
    return torch.randn(x.shape, generator=ctx.generator, device=x.device, dtype=x.dtype)


def _dropout(d: float) -> Callable[[Tensor, LayerContext], Tensor]:
    def drop(x: Tensor, ctx: LayerContext) -> Tensor:
        keep = torch.rand(x.shape, generator=ctx.generator, device=x.device, dtype=x.dtype) >= d
        return x * keep / (1.0 - d)
    return drop


def _matrix(x: Tensor) -> Tensor:
    # The paper's matrix view: join all axes but the first (the sample axis of batch-shaped values).
    return x.reshape(x.shape[0], -1)


def _by_vector_norm(p: float, dim: int | None) -> Callable[[Tensor, LayerContext], Tensor]:
    def divide(x: Tensor, ctx: LayerContext) -> Tensor:
        m = _matrix(x)
        n = torch.linalg.vector_norm(m, ord=p, dim=dim, keepdim=dim is not None)
        return (m / n.clamp_min(EPS)).reshape(x.shape)
    return divide


def _by_matrix_norm(p: str | float) -> Callable[[Tensor, LayerContext], Tensor]:
    def divide(x: Tensor, ctx: LayerContext) -> Tensor:
        return x / torch.linalg.matrix_norm(_matrix(x), ord=p).clamp_min(EPS)
    return divide


def _unary() -> list[Fn]:
    fns = [
        Fn("id", 1, lambda x, c: x, lambda a: a),
        Fn("T", 1, lambda x, c: x.transpose(0, 1), lambda a: _p(a) + r"^{\top}", kind="transpose"),
        Fn("inv", 1, lambda x, c: torch.reciprocal(x), lambda a: rf"\frac{{1}}{{{a}}}", finite_at_zero=False),
        Fn("abs", 1, lambda x, c: x.abs(), lambda a: rf"\left|{a}\right|"),
        Fn("neg", 1, lambda x, c: -x, lambda a: "-" + _p(a)),
        Fn("gt0", 1, lambda x, c: (x > 0).to(x.dtype), lambda a: rf"\mathbb{{1}}[{a} > 0]"),
        Fn("relu", 1, lambda x, c: x.clamp_min(0.0), lambda a: _p(a) + "^{+}"),
        Fn("sgn", 1, lambda x, c: x.sign(), lambda a: rf"\operatorname{{sgn}}({a})"),
        Fn("sqrt_abs", 1, lambda x, c: x.abs().sqrt(), lambda a: rf"\sqrt{{\left|{a}\right|}}"),
        Fn("sgn_sqrt", 1, lambda x, c: x.sign() * x.abs().sqrt(),
           lambda a: rf"\operatorname{{sgn}}({a})\sqrt{{\left|{a}\right|}}"),
        Fn("sq", 1, lambda x, c: x * x, lambda a: _p(a) + "^{2}"),
        Fn("sgn_sq", 1, lambda x, c: x * x.abs(), lambda a: rf"\operatorname{{sgn}}({a})\,{_p(a)}^{{2}}"),
        Fn("cube", 1, lambda x, c: x * x * x, lambda a: _p(a) + "^{3}"),
    ]
    for a in SCALES:
        fns.append(Fn(f"scale_{num(a)}", 1, lambda x, c, a=a: x * a, lambda s, a=a: rf"{num(a)}\,{_p(s)}"))
    for b in SHIFTS:
        sign = "+" if b > 0 else "-"
        fns.append(Fn(f"shift_{num(b)}", 1, lambda x, c, b=b: x + b, lambda s, b=b, g=sign: f"{s} {g} {num(abs(b))}"))
    for s in NOISE_SCALES:
        fns.append(Fn(f"addnoise_{num(s)}", 1, lambda x, c, s=s: x + s * _noise(x, c),
                      lambda a, s=s: rf"{a} + \epsilon_{{{num(s)}}}", stochastic=True))
        fns.append(Fn(f"mulnoise_{num(s)}", 1, lambda x, c, s=s: x * (1.0 + s * _noise(x, c)),
                      lambda a, s=s: rf"(1 + \epsilon_{{{num(s)}}}) \odot {_p(a)}", stochastic=True))
    for d in DROP_RATES:
        fns.append(Fn(f"drop_{num(d)}", 1, _dropout(d), lambda a, d=d: rf"\operatorname{{drop}}_{{{num(d)}}}({a})",
                      stochastic=True))
    for v in CLIP_VALUES:
        fns.append(Fn(f"clip_{num(v)}", 1, lambda x, c, v=v: x.clamp(-v, v),
                      lambda a, v=v: rf"\operatorname{{clip}}_{{{num(v)}}}({a})"))
    for axis, dim in (("elem", None), ("row", 1), ("col", 0)):
        for p in VECTOR_NORMS:
            fns.append(Fn(f"norm_{axis}_{num(p)}", 1, _by_vector_norm(p, dim),
                          lambda a, axis=axis, p=p: rf"\frac{{{a}}}{{\|{a}\|^{{\mathrm{{{axis}}}}}_{{{num(p)}}}}}"))
    for p in MATRIX_NORMS:
        label = "F" if p == "fro" else num(p)
        name = "fro" if p == "fro" else num(p)
        fns.append(Fn(f"norm_{name}", 1, _by_matrix_norm(p), lambda a, q=label: rf"\frac{{{a}}}{{\|{a}\|_{{{q}}}}}"))
    return fns


def _hard_threshold_unary() -> list[Fn]:
    """FTPROP-MB's surrogate derivatives (Friesen & Domingos 2018, reference §1.6): with them FTP-SH and SSTE are
    one-operation equations, e.g. ``mul(gh, sech2(hp))``."""
    def sech2(x: Tensor) -> Tensor:
        t = torch.tanh(x)
        return 1.0 - t * t

    return [
        Fn("tanh", 1, lambda x, c: torch.tanh(x), lambda a: rf"\tanh({a})"),
        Fn("sech2", 1, lambda x, c: sech2(x), lambda a: rf"\operatorname{{sech}}^{{2}}({a})"),
        # qReLU form of the soft hinge: 1 - tanh^2(2x - 1), centred on the staircase's [0, 1] range.
        Fn("sech2_01", 1, lambda x, c: sech2(2.0 * x - 1.0), lambda a: rf"\operatorname{{sech}}^{{2}}(2{_p(a)} - 1)"),
        Fn("win11", 1, lambda x, c: (x.abs() <= 1.0).to(x.dtype), lambda a: rf"\mathbb{{1}}[|{a}| \le 1]"),
        Fn("win01", 1, lambda x, c: ((x >= 0.0) & (x <= 1.0)).to(x.dtype),
           lambda a: rf"\mathbb{{1}}[0 \le {a} \le 1]"),
    ]


def _binary() -> list[Fn]:
    return [
        Fn("add", 2, lambda x, y, c: x + y, lambda a, b: f"{a} + {b}", commutative=True),
        Fn("sub", 2, lambda x, y, c: x - y, lambda a, b: f"{a} - {_p(b)}"),
        Fn("mul", 2, lambda x, y, c: x * y, lambda a, b: rf"{_p(a)} \odot {_p(b)}", commutative=True),
        Fn("div", 2, lambda x, y, c: x / y, lambda a, b: rf"\frac{{{a}}}{{{b}}}", finite_at_zero=False),
        Fn("min", 2, lambda x, y, c: torch.minimum(x, y), lambda a, b: rf"\min\left({a}, {b}\right)",
           commutative=True),
        Fn("max", 2, lambda x, y, c: torch.maximum(x, y), lambda a, b: rf"\max\left({a}, {b}\right)",
           commutative=True),
        Fn("left", 2, lambda x, y, c: x, lambda a, b: a),
        # mm's implementation depends on the operand roles; compile picks the LayerContext.maps method.
        Fn("mm", 2, lambda x, y, c: x @ y, lambda a, b: rf"{_p(a)} \cdot {_p(b)}", kind="product"),
    ]


UNARY: dict[str, Fn] = {f.name: f for f in _unary()}
HARD_THRESHOLD_UNARY: dict[str, Fn] = {f.name: f for f in _hard_threshold_unary()}
BINARY: dict[str, Fn] = {f.name: f for f in _binary()}
FUNCTIONS: dict[str, Fn] = {**UNARY, **HARD_THRESHOLD_UNARY, **BINARY}
# g/||g||_fro and g/||g||^elem_2 are the same function (the flattened 2-norm is the Frobenius norm); the key treats
# them as one so the cache knows they are one candidate. The paper lists both, so both stay searchable.
ALIASES = {"norm_elem_2": "norm_fro"}
