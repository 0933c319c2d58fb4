"""FTPROP-MB's hard-threshold activations with their target-propagation backward (Friesen & Domingos 2018, Alg. 2;
official afriesen/ftprop ``targetprop.py`` and ``activations.py``; ftprop.md §1.2-1.6, §2): the reference route.

The official ``StepF``/``StaircaseF`` are legacy autograd Functions; here one static ``autograd.Function`` carries
the forward (sign11 or the staircase) and a rule's backward, ported rule by rule. An ``Activation`` whose ``fn`` is
``target_prop(forward, rule)`` makes a plain-autograd network (no equation installed) train with FTPROP-MB.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["RULES", "TPRule", "sign11", "staircase", "staircase3", "target", "target_prop"]

Backward = Callable[[Tensor, Tensor], Tensor]   # (z, g) -> gradient at z; g = gradient at the activation's output
LossGrad = Callable[[Tensor, Tensor], Tensor]   # (z, t) -> dL(z, t)/dz of a per-unit layer loss, without 1/N


def sign11(z: Tensor) -> Tensor:
    """The official step11 forward, ``sign(z).clamp(min=0)*2 - 1``: +1 for z > 0, else -1 (sign(0) = -1). Autograd
    differentiates it to exactly zero, so plain backprop leaves every layer below it without a gradient signal."""
    return torch.sign(z).clamp(min=0) * 2 - 1


def staircase(z: Tensor, nsteps: int = 3) -> Tensor:
    """The official StaircaseF forward on x = z (a=0, b=1): ``clamp(ceil((nsteps-1) z), 0, nsteps) / nsteps``."""
    return torch.clamp(torch.ceil(z * (nsteps - 1)), 0, nsteps) * (1.0 / nsteps)


def staircase3(z: Tensor) -> Tensor:
    """2-bit qReLU (``--nonlin staircase3``): levels {0, 1/3, 2/3, 1}, thresholds z > 0, z > 0.5, z > 1."""
    return staircase(z, 3)


def target(g: Tensor) -> Tensor:
    """The target heuristic t = sign(-g) (ftprop.md §1.3); sign(0) = 0 marks a unit to ignore."""
    return torch.sign(-g)


# ---- per-unit layer losses, as derivatives dL(z, t)/dz (ftprop.md §1.4); the official 1/N is applied by _weighted --

def soft_hinge_dz(z: Tensor, t: Tensor) -> Tensor:
    """Soft hinge tanh(-tz) + 1 (FTP-SH). The official code forms tanh(-tz) as soft_hinge(z, t) - 1, which loses
    float32 bits where |tanh| is near 1; we take tanh directly (the same function, rounded once)."""
    s = torch.tanh(-(z * t))
    return (1.0 - s * s) * -t


def hinge_dz(margin: float, trunc: float = float("inf")) -> LossGrad:
    """Official ``dhinge_dz``: -t 1[margin - trunc < tz <= margin]. (1, 2): saturated hinge min(2, max(0, 1 - tz))
    (TruncWtHinge); (0, inf): perceptron max(0, -tz) (WeightedPerceptron); (1, inf): hinge max(0, 1 - tz) (WtHinge,
    whose backward the official code disables with a failing assertion)."""
    def dz(z: Tensor, t: Tensor) -> Tensor:
        u = z * t
        return ((u > margin - trunc) & (u <= margin)).to(z.dtype) * -t
    return dz


def _weighted(dz: LossGrad, scaled: bool) -> Backward:
    """Target form: t = sign(-g), then the layer loss's derivative weighted by |g| (``scale_by_grad_out``, the
    default) or by 1/N (``--no-tp-grad-scale``). The official sign rules multiply by 1/N and StepF by N·|g|; the pair
    cancels, so it is left out (identical for power-of-two batches, within an ulp otherwise)."""
    def backward(z: Tensor, g: Tensor) -> Tensor:
        d = dz(z, target(g))
        return d * g.abs() if scaled else d / g.shape[0]
    return backward


def _staircase_sat_hinge(nsteps: int, scaled: bool, margin: float = 1.0, trunc: float = 2.0) -> Backward:
    """Official StaircaseF TruncWtHinge: per-step truncated-hinge counts, times 1/nsteps, times |g| or 1/N."""
    def backward(x: Tensor, g: Tensor) -> Tensor:
        t = target(g)
        z = x * (nsteps - 1)
        m, q = margin * (nsteps - 1), trunc * (nsteps - 1)
        pos = (z + q - m).clamp(0, nsteps).ceil() - (z - m).clamp(0, nsteps).ceil()
        neg = (z + m).clamp(0, nsteps).ceil() - (z + m - q).clamp(0, nsteps).ceil()
        d = (-t * pos * (t > 0).to(x.dtype) + neg * (t < 0).to(x.dtype)) * (1.0 / nsteps)
        return d * g.abs() if scaled else d * (1.0 / g.shape[0])
    return backward


def _ste(z: Tensor, g: Tensor) -> Tensor:
    return g


def _sste11(z: Tensor, g: Tensor) -> Tensor:
    return g * (z.abs() <= 1).to(g.dtype)


def _sste01(z: Tensor, g: Tensor) -> Tensor:
    return g * ((z >= 0) & (z <= 1)).to(g.dtype)


def _ftp_sh01(scaled: bool) -> Backward:
    # Official StaircaseF SoftHinge: the soft hinge at 2x - 1, the derivative of (tanh(2x - 1) + 1)/2 on [0, 1].
    return _weighted(lambda x, t: soft_hinge_dz(2.0 * x - 1, t), scaled)


@dataclass(frozen=True)
class TPRule:
    """One backward of a hard-threshold activation: our name, the official ``--tp-rule`` (and scaling), the math."""

    name: str
    official: str
    backward: Backward
    formula: str


def _rules() -> dict[str, dict[str, TPRule]]:
    sat, perc, hinge = hinge_dz(1.0, 2.0), hinge_dz(0.0), hinge_dz(1.0)
    sign = [
        TPRule("ftp_sh", "SoftHinge", _weighted(soft_hinge_dz, True), "g * (1 - tanh^2(z))"),
        TPRule("ftp_sh_unscaled", "SoftHinge --no-tp-grad-scale", _weighted(soft_hinge_dz, False),
               "-t * (1 - tanh^2(z)) / N"),
        TPRule("sat_hinge", "TruncWtHinge", _weighted(sat, True), "g * 1[-1 < tz <= 1]"),
        TPRule("sat_hinge_unscaled", "TruncWtHinge --no-tp-grad-scale", _weighted(sat, False),
               "-t * 1[-1 < tz <= 1] / N"),
        TPRule("perceptron", "WeightedPerceptron", _weighted(perc, True), "g * 1[tz <= 0]"),
        TPRule("perceptron_unscaled", "WeightedPerceptron --no-tp-grad-scale", _weighted(perc, False),
               "-t * 1[tz <= 0] / N"),
        TPRule("hinge", "WtHinge (backward disabled officially)", _weighted(hinge, True), "g * 1[tz <= 1]"),
        TPRule("hinge_unscaled", "WtHinge --no-tp-grad-scale (backward disabled officially)",
               _weighted(hinge, False), "-t * 1[tz <= 1] / N"),
        TPRule("sste", "SSTE", _sste11, "g * 1[|z| <= 1]"),
        TPRule("ste", "STE", _ste, "g"),
    ]
    qrelu = [
        TPRule("ftp_sh", "SoftHinge", _ftp_sh01(True), "g * (1 - tanh^2(2z - 1))"),
        TPRule("ftp_sh_unscaled", "SoftHinge --no-tp-grad-scale", _ftp_sh01(False), "-t * (1 - tanh^2(2z - 1)) / N"),
        TPRule("sat_hinge", "TruncWtHinge", _staircase_sat_hinge(3, True), "g * per-step truncated hinge / 3"),
        TPRule("sat_hinge_unscaled", "TruncWtHinge --no-tp-grad-scale", _staircase_sat_hinge(3, False),
               "-t * per-step truncated hinge / (3N)"),
        TPRule("sste", "SSTE", _sste01, "g * 1[0 <= z <= 1]"),
    ]
    return {"sign": {r.name: r for r in sign}, "qrelu": {r.name: r for r in qrelu}}


# forward name -> rule name -> rule. Activation names are f"{forward}_{rule}", e.g. "sign_ftp_sh", "qrelu_sste".
RULES: dict[str, dict[str, TPRule]] = _rules()
FORWARDS: dict[str, Callable[[Tensor], Tensor]] = {"sign": sign11, "qrelu": staircase3}


class _TargetProp(torch.autograd.Function):
    """Static port of the legacy StepF / StaircaseF (ftprop.md §2.4): configuration in, None gradients out for it."""

    @staticmethod
    def forward(ctx, z: Tensor, forward: Callable[[Tensor], Tensor], backward: Backward) -> Tensor:
        ctx.save_for_backward(z)
        ctx.rule = backward
        return forward(z)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None, None]:
        (z,) = ctx.saved_tensors
        return ctx.rule(z, g), None, None


def target_prop(forward: str, rule: str) -> Callable[[Tensor], Tensor]:
    """The activation ``forward`` ("sign" or "qrelu") whose autograd backward is FTPROP-MB rule ``rule``."""
    fwd, bwd = FORWARDS[forward], RULES[forward][rule].backward

    def activation(z: Tensor) -> Tensor:
        return _TargetProp.apply(z, fwd, bwd)
    activation.__qualname__ = f"target_prop_{forward}_{rule}"
    return activation
