"""FTPROP-MB's CIFAR-10 nets, ConvNet4 and ConvNet8 (Friesen & Domingos 2018 §5; official ``models/convnet4.py`` and
``models/convnet8.py``; ftprop.md §3.3-3.4), with every activation in a ``Link`` so an equation can drive it.

Only activations are quantized: weights, the input and the logits stay full precision. Pooling and batch norm sit
before each activation, outside the links, so they always get standard gradients.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from evaluators.activations import Activation
from evaluators.rule_link import Chain, Link
from primitives import LayerContext

# ConvNet8 is defined for these input sizes only (official: "no other input sizes are currently supported"):
# side -> (conv0 padding, conv6 kernel), so that conv6 sees a kernel-sized map and outputs 1x1.
CONVNET8_GEOMETRY = {32: (2, 4), 40: (0, 5)}
BN_EPS = 1e-4   # the official ConvNet8's batch norms


class ConvNet4(nn.Module):
    """conv5x5(32, pad 3) → pool → act → conv5x5(64, pad 2) → pool → act → fc(1024) → act → fc.

    All layers have biases. The official ``--use-bn`` variant (BN after the second and third activations) is left
    out: none of the paper's ConvNet4 runs use it, and BN after an activation would sit inside a link.
    """

    def __init__(self, in_shape: tuple[int, int, int], n_classes: int, act: Activation) -> None:
        super().__init__()
        c, height, width = in_shape
        self.conv1 = nn.Conv2d(c, 32, 5, padding=3)           # 32x32 -> 34x34
        self.pool = nn.MaxPool2d(2)
        self.block2 = Chain(Link(act, nn.Conv2d(32, 64, 5, padding=2)))
        # The official flat size, (H//4)(W//4)·64, equals the real one, ((H+2)//2//2)·..., for H % 4 in {0, 1}; the
        # real one also works for other sizes.
        flat = 64 * ((height + 2) // 4) * ((width + 2) // 4)
        self.head = Chain(Link(act, nn.Linear(flat, 1024), flatten=True), Link(act, nn.Linear(1024, n_classes)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.block2(self.pool(self.conv1(x)))))


class DropoutConv2d(nn.Conv2d):
    """``nn.Dropout2d(p)`` then the convolution, as one module, so that a ``Link`` can hold both and the mask stays
    readable (``mask``) for its rule. The mask is drawn like ``nn.Dropout2d`` draws it: one Bernoulli(1 - p) per
    sample and channel from torch's global generator, kept entries scaled by 1/(1 - p); none in eval mode."""

    def __init__(self, *args, p: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.p = p
        self.mask: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        self.mask = None
        if self.training and self.p > 0:
            shape = (*x.shape[:2], *(1,) * (x.dim() - 2))
            self.mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.p).div_(1 - self.p)
            x = x * self.mask
        return super().forward(x)


class _DroppedMaps:
    """A link's linear maps with the dropout mask between layer i and the convolution: ``down`` (b_next·W^t, also
    with R in W's place) and ``up`` (h·W) pass through the mask, as the exact Jacobian of dropout-then-conv does; the
    maps to and from the output (DFA) bypass it."""

    def __init__(self, maps: object, op: DropoutConv2d) -> None:
        self.maps, self.op = maps, op

    def down(self, x_next: Tensor, w_t: Tensor) -> Tensor:
        y, mask = self.maps.down(x_next, w_t), self.op.mask
        return y if mask is None else y * mask

    def up(self, x: Tensor, w: Tensor) -> Tensor:
        mask = self.op.mask
        return self.maps.up(x if mask is None else x * mask, w)

    def __getattr__(self, name: str):   # from_out, to_out and the shapes, unchanged
        return getattr(self.maps, name)


class DropoutLink(Link):
    """A link whose linear map is a ``DropoutConv2d``: ConvNet8's Dropout2d before conv6. Autograd's gradient at the
    activation's output (``gh``, and ``g``) already includes the mask; the rule's own down map (``mm``) gets it
    too, so every equation sees dropout exactly as backprop does."""

    def __init__(self, act: Activation, op: DropoutConv2d) -> None:
        super().__init__(act, op)

    def make_context(self, hp: Tensor) -> LayerContext:
        ctx = super().make_context(hp)
        ctx.maps = _DroppedMaps(ctx.maps, self.op)
        return ctx


class ConvNet8(nn.Module):
    """DoReFa's SVHN net as FTPROP-MB ran it on CIFAR-10 (``--use-bn``; BN eps 1e-4; conv1-conv6 without bias):

    conv0 5x5(48) → pool → act → [conv(64) → BN → act] → conv(64) → BN → pool → act → [conv(128, valid) → BN → act]
    → conv(128) → BN → act → conv(128, valid) → BN → act → Dropout2d(0.5) → conv(512, 4x4 valid) → BN → act → fc.

    The last hidden activation is hard-threshold too (official ``no_step_last=False``). Batch-norm scales start
    uniform on [0, 1], PyTorch's default before 1.0 (pytorch#12259), which the official runs got: with a
    sign after BN, the scale sets the width of the SSTE window and of FTP-SH's tanh.
    """

    def __init__(self, in_shape: tuple[int, int, int], n_classes: int, act: Activation) -> None:
        super().__init__()
        c, side, _ = in_shape
        pad0, ks6 = CONVNET8_GEOMETRY[side]
        self.conv0 = nn.Conv2d(c, 48, 5, padding=pad0)
        self.pool = nn.MaxPool2d(2)
        specs = ((48, 64, 3, 1), (64, 64, 3, 1), (64, 128, 3, 0), (128, 128, 3, 1), (128, 128, 3, 0))
        self.blocks = nn.ModuleList(Chain(Link(act, nn.Conv2d(a, b, k, padding=p, bias=False))) for a, b, k, p in specs)
        self.block6 = Chain(DropoutLink(act, DropoutConv2d(128, 512, ks6, bias=False, p=0.5)))
        self.bns = nn.ModuleList(nn.BatchNorm2d(n, eps=BN_EPS) for n in (64, 64, 128, 128, 128, 512))
        for bn in self.bns:
            nn.init.uniform_(bn.weight)
        self.head = Chain(Link(act, nn.Linear(512, n_classes), flatten=True))

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.conv0(x))
        for k, (block, bn) in enumerate(zip((*self.blocks, self.block6), self.bns)):
            x = bn(block(x))
            if k == 1:   # block 2: conv → BN → max-pool → act
                x = self.pool(x)
        return self.head(x)
