"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016), pre-activation BN-ReLU-conv blocks, as in Backprop Evolution.

Searchable layers are the block-internal ReLUs (each a ``Link`` into the following 3x3 conv). Batch norm, the
residual additions, the 1x1 shortcut convs, the stem conv and the head (BN-ReLU-pool-linear) use standard gradients.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from evaluators.activations import Activation
from evaluators.rule_link import Chain, Link


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: Activation) -> None:
        super().__init__()
        self.act = act
        self.bn1 = nn.BatchNorm2d(c_in)
        self.shortcut = None if c_in == c_out and stride == 1 else nn.Conv2d(c_in, c_out, 1, stride, bias=False)
        self.link1 = Chain(Link(act, nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                                shared_input=self.shortcut is not None))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.link2 = Chain(Link(act, nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)))

    def forward(self, x: Tensor) -> Tensor:
        hp = self.bn1(x)
        # The 1x1 shortcut reads the activated input too; that branch keeps its standard gradient.
        residual = x if self.shortcut is None else self.shortcut(self.act.fn(hp))
        return self.link2(self.bn2(self.link1(hp))) + residual


class WideResNet(nn.Module):
    def __init__(self, depth: int, width: int, in_channels: int, n_classes: int, act: Activation) -> None:
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * width, 32 * width, 64 * width)
        self.act = act
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks = []
        for group, stride in zip(range(3), (1, 2, 2)):
            for i in range(n):
                blocks.append(Block(widths[group] if i == 0 else widths[group + 1], widths[group + 1],
                                    stride if i == 0 else 1, act))
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[3])
        self.head = nn.Linear(widths[3], n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.act.fn(self.bn(self.blocks(self.stem(x))))
        return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1))
