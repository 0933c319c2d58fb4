"""A small ConvNet: conv -> pool -> [act -> conv -> pool] -> act -> flatten -> linear -> act -> linear.

Pooling sits before the activation (as in FTPROP's ConvNet4; the same function for max-pool and monotone
activations), so the searched value at each activation's input flows through pooling by standard gradients.
"""
from __future__ import annotations

from torch import Tensor, nn

from evaluators.activations import Activation
from evaluators.rule_link import Chain, Link


class ConvNet(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], n_classes: int, act: Activation, channels: tuple[int, int] = (16, 32),
                 hidden: int = 64) -> None:
        super().__init__()
        c, height, width = in_shape
        c1, c2 = channels
        pool = 2 if min(height, width) >= 8 else 1
        self.first = nn.Conv2d(c, c1, 3, padding=1)
        self.pool = nn.MaxPool2d(pool) if pool > 1 else nn.Identity()
        flat = c2 * (height // pool // pool) * (width // pool // pool)
        self.conv = Chain(Link(act, nn.Conv2d(c1, c2, 3, padding=1)))
        self.head = Chain(Link(act, nn.Linear(flat, hidden), flatten=True), Link(act, nn.Linear(hidden, n_classes)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.conv(self.pool(self.first(x)))))
