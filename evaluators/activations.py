"""Activation functions by name, each with the derivative that the ``dact`` operand reads.

Derivatives match autograd's own masks at the kinks, so the backprop seed equals autograd exactly. The hard
thresholds (``sign``, ``qrelu``; Friesen & Domingos 2018) have derivative zero almost everywhere: backprop cannot
train them, which is why FTPROP-MB's rules exist. ``sign_<rule>`` and ``qrelu_<rule>`` (e.g. ``sign_ftp_sh``) are
the same forwards with an FTPROP-MB rule as their autograd backward (``evaluators.ftprop``, the direct route).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from evaluators.ftprop import RULES, sign11, staircase3, target_prop


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[Tensor], Tensor]                   # forward, differentiable by autograd where it has a gradient
    derivative: Callable[[Tensor, Tensor], Tensor]   # (hp, h) -> dh/dhp, as the dact operand
    hard_threshold: bool = False


def _zero(hp: Tensor, h: Tensor) -> Tensor:
    return torch.zeros_like(hp)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", torch.relu, lambda hp, h: h.sign()),   # h >= 0: sign(h) = 1[h > 0], one op
    "tanh": Activation("tanh", torch.tanh, lambda hp, h: 1.0 - h * h),
    "sigmoid": Activation("sigmoid", torch.sigmoid, lambda hp, h: h * (1.0 - h)),
    # FTPROP's threshrelu: min(max(z, 0), 1); autograd's clamp passes the gradient on the closed interval.
    "sat_relu": Activation("sat_relu", lambda z: torch.clamp(z, 0.0, 1.0),
                           lambda hp, h: ((hp >= 0) & (hp <= 1)).to(hp.dtype)),
    "sign": Activation("sign", sign11, _zero, hard_threshold=True),
    "qrelu": Activation("qrelu", staircase3, _zero, hard_threshold=True),
}
# FTPROP-MB's direct route: the hard-threshold forwards with a target-propagation rule as their backward. The
# dact operand stays the true derivative (zero): with an equation installed, the equation is the backward.
ACTIVATIONS.update({
    f"{fwd}_{rule}": Activation(f"{fwd}_{rule}", target_prop(fwd, rule), _zero, hard_threshold=True)
    for fwd, rules in RULES.items() for rule in rules
})
