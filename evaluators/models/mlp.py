"""MLP: input -> Linear -> [activation -> Linear] * depth; every hidden layer is searchable."""
from __future__ import annotations

from torch import Tensor, nn

from evaluators.activations import Activation
from evaluators.rule_link import Chain, Link


class MLP(nn.Module):
    def __init__(self, in_features: int, widths: tuple[int, ...], n_classes: int, act: Activation) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, widths[0])
        sizes = (*widths, n_classes)
        self.chain = Chain(*(Link(act, nn.Linear(a, b)) for a, b in zip(sizes[:-1], sizes[1:])))

    def forward(self, x: Tensor) -> Tensor:
        return self.chain(self.first(x.flatten(1)))
