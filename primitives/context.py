"""Per-layer context of a compiled rule: the layer's linear maps, its running statistics and its noise generator.

A trainer keeps one ``LayerContext`` per searchable layer for the whole run, so running averages carry across steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from primitives.operands import RUNNING_DECAY

EPS = 1e-12


class RunningMoments:
    """Running statistics of one operand at one layer, over training steps.

    "Running" means: every call of the layer's rule is one step t. With the operand's per-feature batch mean
    ``m_t = mean_n(x_t)`` and second moment ``q_t = mean_n(x_t^2)`` (the mean over the sample axis only, so a conv
    operand has one statistic per (channel, row, column)), the state is the exponential average
    ``M_t = r M_{t-1} + (1 - r) m_t`` and ``Q_t = r Q_{t-1} + (1 - r) q_t`` with r = 0.9, started at the first
    batch's own statistics (``M_1 = m_1``), so there is no zero-initialisation bias. The step includes the current
    batch. Then ``mhat(x) = M_t``, ``shat(x) = sqrt(max(Q_t - M_t^2, 0))`` and ``bn(x) = (x - M_t) / (shat(x) + 1e-5)``,
    each broadcast over the batch.
    """

    __slots__ = ("decay", "mean", "sq")

    def __init__(self, decay: float = RUNNING_DECAY) -> None:
        self.decay = decay
        self.mean: Tensor | None = None
        self.sq: Tensor | None = None

    def update(self, x: Tensor) -> None:
        m = x.mean(0)
        q = (x * x).mean(0)
        if self.mean is None or self.mean.shape != m.shape:
            self.mean, self.sq = m, q
        else:
            self.mean = torch.lerp(m, self.mean, self.decay)
            self.sq = torch.lerp(q, self.sq, self.decay)

    def std(self) -> Tensor:
        return (self.sq - self.mean * self.mean).clamp_min(0.0).sqrt()


class LinearMaps:
    """Dense semantics of ``mm``: matrix products on the matrix views (all axes but the first joined)."""

    def __init__(self, layer_shape: tuple[int, ...], next_shape: tuple[int, ...]) -> None:
        self.layer_shape = tuple(layer_shape)
        self.next_shape = tuple(next_shape)
        self._flat = len(self.layer_shape) == 1 and len(self.next_shape) == 1  # dense-to-dense: no reshapes

    def down(self, x_next: Tensor, w_t: Tensor) -> Tensor:
        """Next × WeightT → Layer (b_next · W^t)."""
        if self._flat and w_t.dim() == 2:
            return x_next @ w_t
        n = x_next.shape[0]
        return (x_next.reshape(n, -1) @ w_t.reshape(w_t.shape[0], -1)).reshape(n, *self.layer_shape)

    def up(self, x: Tensor, w: Tensor) -> Tensor:
        """Layer × Weight → Next (h · W)."""
        n = x.shape[0]
        return (x.reshape(n, -1) @ w.reshape(w.shape[0], -1)).reshape(n, *self.next_shape)

    def from_out(self, x_out: Tensor, rl: Tensor) -> Tensor:
        """Out × Feedback → Layer (bL · RL)."""
        return (x_out @ rl).reshape(x_out.shape[0], *self.layer_shape)

    def to_out(self, x: Tensor, rl_t: Tensor) -> Tensor:
        """Layer × FeedbackT → Out."""
        return x.reshape(x.shape[0], -1) @ rl_t


class ConvMaps(LinearMaps):
    """Conv semantics of ``mm`` when layer i+1 is a 2-D convolution: down is the transposed convolution, exactly the
    input-gradient of that convolution, and up is the convolution itself (no bias). Weights are 4-D:
    Weight (C_i, C_{i+1}, k, k), WeightT = PyTorch's (C_{i+1}, C_i, k, k)."""

    def __init__(self, layer_shape: tuple[int, ...], next_shape: tuple[int, ...], *, stride: int | tuple = 1,
                 padding: int | tuple = 0, dilation: int | tuple = 1) -> None:
        super().__init__(layer_shape, next_shape)
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def down(self, x_next: Tensor, w_t: Tensor) -> Tensor:
        size = (x_next.shape[0], *self.layer_shape)
        return torch.nn.grad.conv2d_input(size, w_t, x_next, self.stride, self.padding, self.dilation)

    def up(self, x: Tensor, w: Tensor) -> Tensor:
        return F.conv2d(x, w.transpose(0, 1), None, self.stride, self.padding, self.dilation)


@dataclass
class LayerContext:
    """Everything a rule needs besides the operand tensors, for one searchable layer."""

    maps: LinearMaps
    generator: torch.Generator | None = None
    stats: dict[str, RunningMoments] = field(default_factory=dict)

    def moments(self, name: str) -> RunningMoments:
        m = self.stats.get(name)
        if m is None:
            m = self.stats[name] = RunningMoments()
        return m
