"""K members' copies of one layer as one module: parameters and buffers stacked on a leading member axis.

Activations are laid out member-major: rows ``[j*B, (j+1)*B)`` of a ``(K*B, ...)`` tensor are member j's batch.
Per-sample modules (activations, pooling, flatten, residual additions) then run unchanged on all members at once,
and only the modules that hold parameters need these stacked versions: a linear layer is one ``baddbmm`` and a
convolution one grouped convolution, so each member's output depends on its own rows and weights alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Unbatchable(Exception):
    """The model holds something the batched evaluator cannot stack; its members are trained one by one instead."""


def _stack(tensors: list[Tensor | None]) -> Tensor | None:
    return None if tensors[0] is None else torch.stack([t.detach() for t in tensors])


class Stacked(nn.Module):
    """Base: every parameter and non-scalar buffer has the member axis first; ``select`` keeps some members."""

    @property
    def members(self) -> int:
        return next(iter(self.parameters())).shape[0]

    @torch.no_grad()
    def select(self, index: Tensor) -> None:
        """Keep the members at ``index`` (a long tensor), with their gradients, dropping the rest."""
        for name, p in self._parameters.items():
            if p is None:
                continue
            kept = nn.Parameter(p.index_select(0, index))
            if p.grad is not None:
                kept.grad = p.grad.index_select(0, index)
            self._parameters[name] = kept
        for name, b in self._buffers.items():
            if b is not None and b.dim() > 0:
                self._buffers[name] = b.index_select(0, index)


def _linear(x3: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
    """(K, B, in) rows times each member's (out, in) weight, plus its bias: (K, B, out)."""
    if bias is None:
        return torch.bmm(x3, w.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x3, w.transpose(1, 2))


class _LinearFunction(torch.autograd.Function):
    """``_linear`` with its backward written out so that the weight gradient is formed in the weight's own
    (K, out, in) layout. Autograd's baddbmm backward forms it transposed, and the parameter's gradient then costs a
    transposing copy per step, as large as the weight; the input gradient is formed only when asked for."""

    @staticmethod
    def forward(ctx, x3: Tensor, w: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x3, w)
        ctx.has_bias = bias is not None
        return _linear(x3, w, bias)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x3, w = ctx.saved_tensors
        dx = torch.bmm(grad, w) if ctx.needs_input_grad[0] else None
        dw = torch.bmm(grad.transpose(1, 2), x3) if ctx.needs_input_grad[1] else None
        db = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


class StackedLinear(Stacked):
    """K ``nn.Linear`` layers: (K*B, in) -> (K*B, out) as one batched matrix product."""

    def __init__(self, layers: list[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(_stack([m.weight for m in layers]))
        self.bias = None if layers[0].bias is None else nn.Parameter(_stack([m.bias for m in layers]))

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        x3 = x.reshape(w.shape[0], -1, x.shape[-1])
        if torch.is_grad_enabled():
            out = _LinearFunction.apply(x3, w, self.bias)
        else:   # evaluation passes: no graph, no Function wrapper
            out = _linear(x3, w, self.bias)
        return out.reshape(-1, out.shape[-1])


def _to_channels(x: Tensor, k: int) -> Tensor:
    """(K*B, C, H, W) member-major rows -> (B, K*C, H, W), member j's channels in block j."""
    n, c = x.shape[0] // k, x.shape[1]
    return x.reshape(k, n, c, *x.shape[2:]).transpose(0, 1).reshape(n, k * c, *x.shape[2:])


def _to_rows(x: Tensor, k: int) -> Tensor:
    """The inverse of ``_to_channels``."""
    n, c = x.shape[0], x.shape[1] // k
    return x.reshape(n, k, c, *x.shape[2:]).transpose(0, 1).reshape(k * n, c, *x.shape[2:])


class StackedConv2d(Stacked):
    """K ``nn.Conv2d`` layers as one grouped convolution over the members' channel blocks."""

    def __init__(self, layers: list[nn.Conv2d]) -> None:
        super().__init__()
        first = layers[0]
        if first.groups != 1 or first.padding_mode != "zeros":
            raise Unbatchable(f"conv with groups={first.groups}, padding_mode={first.padding_mode!r}")
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        self.weight = nn.Parameter(_stack([m.weight for m in layers]))
        self.bias = None if first.bias is None else nn.Parameter(_stack([m.bias for m in layers]))

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        k = w.shape[0]
        bias = None if self.bias is None else self.bias.reshape(-1)
        out = F.conv2d(_to_channels(x, k), w.reshape(-1, *w.shape[2:]), bias, self.stride, self.padding,
                       self.dilation, groups=k)
        return _to_rows(out, k)


class StackedBatchNorm2d(Stacked):
    """K ``nn.BatchNorm2d`` layers: each member normalises with its own batch statistics and running averages."""

    def __init__(self, layers: list[nn.BatchNorm2d]) -> None:
        super().__init__()
        first = layers[0]
        if first.momentum is None or not first.track_running_stats or not first.affine:
            raise Unbatchable("batch norm without momentum, running statistics or affine parameters")
        self.eps, self.momentum = first.eps, first.momentum
        self.weight = nn.Parameter(_stack([m.weight for m in layers]))
        self.bias = nn.Parameter(_stack([m.bias for m in layers]))
        self.register_buffer("running_mean", _stack([m.running_mean for m in layers]))
        self.register_buffer("running_var", _stack([m.running_var for m in layers]))

    def forward(self, x: Tensor) -> Tensor:
        k = self.weight.shape[0]
        # Flat views of the stacked buffers: batch_norm updates them in place.
        y = F.batch_norm(_to_channels(x, k), self.running_mean.view(-1), self.running_var.view(-1),
                         self.weight.reshape(-1), self.bias.reshape(-1), self.training, self.momentum, self.eps)
        return _to_rows(y, k)


STACKED: dict[type, type[Stacked]] = {nn.Linear: StackedLinear, nn.Conv2d: StackedConv2d,
                                      nn.BatchNorm2d: StackedBatchNorm2d}
