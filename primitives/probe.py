"""Probe operands: small, consistent random operands of a real dense or conv layer pair, and ``check``.

``check`` is the paper's feasibility test (§3.2: the controller re-mutates until feasible) for what types cannot
catch: an equation that raises, or gives a non-finite value, on benign random operands.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from primitives.compile import compile_equation
from primitives.context import ConvMaps, LayerContext, LinearMaps


@dataclass(frozen=True)
class Probe:
    """Raw operands of layer i (ReLU activation) and its context; ``env()`` returns a fresh operand dict."""

    tensors: dict[str, Tensor]
    maps: LinearMaps
    layer_shape: tuple[int, ...]

    def env(self) -> dict[str, Tensor]:
        return dict(self.tensors)

    def context(self, seed: int = 0) -> LayerContext:
        return LayerContext(self.maps, torch.Generator().manual_seed(seed))


def make_probe(kind: str = "dense", *, batch: int = 8, seed: int = 0, dtype: torch.dtype = torch.float64) -> Probe:
    """Operands of a real two-layer slice: hp -> ReLU -> (linear or 3x3 conv, stride 2) -> hp_next.

    ``b_next`` and ``bL`` are random, as the values arriving from above would be. Feedback matrices are on the scale
    of the probe's own weights: R ~ N(0, 1/fan), S = ±1/sqrt(fan) (fan: the down map's fan), RL ~ N(0, 1/d_L). The
    trainers scale theirs like PyTorch's default initialisation (std 1/sqrt(3 fan_in), ``evaluators/rule_link.py``);
    a probe needs values of a realistic order, not the same ones.
    """
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype)

    d_out = 5
    if kind == "dense":
        layer_shape, d_next = (7,), 6
        hp = randn(batch, 7)
        w_torch = randn(d_next, 7) / 7 ** 0.5          # PyTorch layout (out, in) of layer i+1
        h = hp.clamp_min(0)
        hp_next = h @ w_torch.t()
        next_shape: tuple[int, ...] = (d_next,)
        maps: LinearMaps = LinearMaps(layer_shape, next_shape)
        fan = d_next
    elif kind == "conv":
        layer_shape = (3, 6, 6)
        hp = randn(batch, *layer_shape)
        w_torch = randn(4, 3, 3, 3) / 27 ** 0.5
        h = hp.clamp_min(0)
        hp_next = F.conv2d(h, w_torch, stride=2, padding=1)
        next_shape = tuple(hp_next.shape[1:])
        maps = ConvMaps(layer_shape, next_shape, stride=2, padding=1)
        fan = 4 * 9
    else:
        raise ValueError(f"unknown probe kind {kind!r}; use 'dense' or 'conv'")
    w = w_torch.transpose(0, 1)                          # the DSL's W: (d_i, d_{i+1}) / (C_i, C_{i+1}, k, k)
    sign = torch.where(torch.rand(w.shape, generator=gen, dtype=dtype) < 0.5, -1.0, 1.0).to(dtype)
    size = 1
    for s in layer_shape:
        size *= s
    tensors = {
        "hp": hp, "h": h, "dact": (hp > 0).to(dtype), "hp_next": hp_next,
        "b_next": randn(*hp_next.shape), "bL": randn(batch, d_out),
        "W": w, "R": randn(*w.shape) / fan ** 0.5, "S": sign / fan ** 0.5, "RL": randn(d_out, size) / d_out ** 0.5,
    }
    return Probe(tensors, maps, layer_shape)


@functools.cache
def _probes() -> tuple[Probe, Probe]:
    return make_probe("dense", dtype=torch.float32), make_probe("conv", dtype=torch.float32)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def check(equation) -> CheckResult:
    """Is the equation feasible? It must run on dense and conv probes and give a finite, layer-shaped value."""
    try:
        rule = compile_equation(equation)
    except ValueError as exc:
        return CheckResult(False, f"does not compile: {exc}")
    for probe in _probes():
        try:
            with torch.no_grad():
                out = rule(probe.env(), probe.context())
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            return CheckResult(False, f"raises on a {len(probe.layer_shape)}-D probe: {exc}")
        expected = (probe.tensors["hp"].shape[0], *probe.layer_shape)
        if tuple(out.shape) != expected:
            return CheckResult(False, f"shape {tuple(out.shape)} instead of {expected}")
        if not bool(torch.isfinite(out).all()):
            return CheckResult(False, "non-finite values on a random probe")
    return CheckResult(True)
