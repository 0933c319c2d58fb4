"""Model builders by name, all from one ``ModelSpec``, and ``install_rule`` to make their links rule-driven."""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable

import torch
from torch import nn

from evaluators.activations import ACTIVATIONS
from evaluators.models.convnet import ConvNet
from evaluators.models.ftprop_convnets import CONVNET8_GEOMETRY, ConvNet4, ConvNet8
from evaluators.models.mlp import MLP
from evaluators.models.wrn import WideResNet
from evaluators.rule_link import Link, NetworkState
from evaluators.task import ModelSpec
from primitives import Rule


class ModelError(ValueError):
    """A model spec that cannot be built; the message names the field and the valid values."""


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) == 3:
        return input_shape
    n = input_shape[0]
    side = int(round(n ** 0.5))
    if len(input_shape) == 1 and side * side == n:   # flat square images (digits: 64 = 8x8)
        return (1, side, side)
    raise ModelError(f"a conv model needs image inputs (C, H, W) or flat square ones; got shape {input_shape}")


class _AsImage(nn.Module):
    def __init__(self, shape: tuple[int, int, int], net: nn.Module) -> None:
        super().__init__()
        self.shape, self.net = shape, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], *self.shape))


def _conv(build: Callable[[tuple[int, int, int]], nn.Module], input_shape: tuple[int, ...]) -> nn.Module:
    shape = _image_shape(input_shape)
    net = build(shape)
    return net if len(input_shape) == 3 else _AsImage(shape, net)


def _convnet8(shape: tuple[int, int, int], n_classes: int, act) -> nn.Module:
    if shape[1] != shape[2] or shape[1] not in CONVNET8_GEOMETRY:
        sizes = " or ".join(f"{s}x{s}" for s in CONVNET8_GEOMETRY)
        raise ModelError(f"convnet8 needs {sizes} images (as the official code); got {shape[1]}x{shape[2]}: "
                         f"use --model convnet4 for other sizes")
    return ConvNet8(shape, n_classes, act)


def _builders() -> dict[str, Callable[[ModelSpec, tuple[int, ...], int], nn.Module]]:
    act = lambda spec: ACTIVATIONS[spec.activation]  # noqa: E731
    return {
        "mlp": lambda s, shape, k: MLP(math.prod(shape), s.widths, k, act(s)),
        "convnet": lambda s, shape, k: _conv(lambda sh: ConvNet(sh, k, act(s)), shape),
        "wrn": lambda s, shape, k: _conv(lambda sh: WideResNet(s.depth, s.width, sh[0], k, act(s)), shape),
        # FTPROP-MB's CIFAR-10 nets (evaluators/models/ftprop_convnets.py)
        "convnet4": lambda s, shape, k: _conv(lambda sh: ConvNet4(sh, k, act(s)), shape),
        "convnet8": lambda s, shape, k: _conv(lambda sh: _convnet8(sh, k, act(s)), shape),
    }


ARCHS = ("mlp", "convnet", "wrn", "convnet4", "convnet8")


def validate(spec: ModelSpec) -> None:
    """Raise ``ModelError`` with a one-line fix for a spec no builder accepts."""
    for field_, value, valid in (("arch", spec.arch, ARCHS), ("activation", spec.activation, tuple(ACTIVATIONS))):
        if value not in valid:
            close = difflib.get_close_matches(str(value), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ModelError(f"unknown model {field_} {value!r}; valid: {', '.join(valid)}{hint}")
    if spec.arch == "mlp" and (not spec.widths or min(spec.widths) < 1):
        raise ModelError(f"mlp widths must be one or more positive integers, got {spec.widths}")
    if spec.arch == "wrn" and ((spec.depth - 4) % 6 or spec.depth < 10 or spec.width < 1):
        raise ModelError(f"WRN depth must be 6n+4 >= 10 and width >= 1, got depth {spec.depth}, width {spec.width}")


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Build the model named by ``spec.arch`` for inputs of ``input_shape`` (per sample) and ``n_classes``."""
    validate(spec)
    return _builders()[spec.arch](spec, tuple(input_shape), n_classes)


def links(model: nn.Module) -> list[Link]:
    return [m for m in model.modules() if isinstance(m, Link)]


def install_rule(model: nn.Module, rule: Rule | None, seed: int, n_classes: int) -> NetworkState:
    """Make every link of ``model`` use ``rule`` (None: plain autograd). Random feedback matrices come from ``seed``
    alone and stay fixed; returns the state shared by the links (the output error, the finiteness check)."""
    state = NetworkState()
    generator = torch.Generator().manual_seed(seed + 0x5EED)
    for ln in links(model):
        ln.install(rule, state, generator, n_classes)
    for handle in getattr(model, "_bl_hooks", ()):
        handle.remove()
    if rule is not None and "bL" in rule.inputs:  # the output error reaches the links through a hook on the logits
        def catch_output_error(module: nn.Module, args: tuple, logits: torch.Tensor) -> None:
            if logits.requires_grad:
                logits.register_hook(state.set_bL)
        model._bl_hooks = [model.register_forward_hook(catch_output_error)]
    return state
