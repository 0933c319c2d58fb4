"""Rule-driven backward. A ``Link`` is searchable layer i's activation followed by layer i+1's linear map; a
``Chain`` is links that feed each other directly, run as one ``autograd.Function``.

The backward receives ``b_next`` (the gradient at layer i+1's pre-activation), forms layer i+1's weight gradient
with the standard local Jacobian (ΔW = b ∂h^p/∂W, Backprop Evolution §2) and returns the rule's value as the
gradient at layer i's pre-activation, so the searched value propagates further down. Everything outside the chains
(pooling, batch norm, residual additions, the input layer) is ordinary autograd. One Function per chain rather than
per link keeps per-step Python work small: on tiny networks that overhead is the cost.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evaluators.activations import Activation
from primitives import ConvMaps, LayerContext, LinearMaps, Rule


class NetworkState:
    """Shared by a network's links during one backward pass: the output error bL."""

    def __init__(self) -> None:
        self.bL: Tensor | None = None

    def set_bL(self, grad: Tensor) -> None:
        self.bL = grad


# Raw operands that cost work or live on the link, computed only when the rule reads them. hp, h, hp_next and b_next
# are always in the environment (free); W, R and S are given in the paper's orientation, as views made once
# (optimizers update parameters in place, so the views stay current).
_EXTRA = {
    "dact": lambda ln, hp, h: ln.act.derivative(hp, h),
    "bL": lambda ln, hp, h: ln.state.bL,
    "W": lambda ln, hp, h: ln.views["W"],
    "R": lambda ln, hp, h: ln.views["R"],
    "S": lambda ln, hp, h: ln.views["S"],
    "RL": lambda ln, hp, h: ln.RL if ln.RL is not None else ln.draw_feedback(hp),
}


class Link(nn.Module):
    """Activation of searchable layer i, then layer i+1's ``nn.Linear`` or ``nn.Conv2d`` (after a flatten if asked).
    Without a rule it is plain autograd: the same module is its own baseline."""

    def __init__(self, act: Activation, op: nn.Linear | nn.Conv2d, flatten: bool = False) -> None:
        super().__init__()
        self.act, self.op, self.flatten = act, op, flatten
        self.conv = isinstance(op, nn.Conv2d)
        # Plain attributes, read every step (nn.Module.__getattr__ is slow for submodules and parameters).
        self.has_bias = op.bias is not None
        self.geometry = (op.stride, op.padding, op.dilation) if self.conv else ()
        self.rule: Rule | None = None
        self.state = NetworkState()
        self.views: dict[str, Tensor] = {}
        self.extras: tuple = ()
        self._ctx: LayerContext | None = None
        self._noise_seed = 0

    def linear(self, h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.conv:
            return F.conv2d(h, weight, bias, *self.geometry)
        return F.linear(h.flatten(1) if self.flatten else h, weight, bias)

    def backward_step(self, hp: Tensor, h: Tensor, weight: Tensor, out: Tensor, b_next: Tensor):
        """(rule value at hp, weight gradient, bias gradient) from the gradient ``b_next`` at ``out``."""
        x = h.flatten(1) if self.flatten else h
        if self.conv:
            grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, b_next, *self.geometry)
            grad_b = b_next.sum((0, 2, 3)) if self.has_bias else None
        else:
            grad_w = b_next.t() @ x
            grad_b = b_next.sum(0) if self.has_bias else None
        env = {"hp": hp, "h": h, "hp_next": out, "b_next": b_next}
        for name, get in self.extras:
            env[name] = get(self, hp, h)
        # No finiteness check here: a NaN or Inf in b reaches the weight gradient of the layer below (b enters
        # grad_w = b^T x), so the next step's loss is non-finite and the trainer stops the run then.
        return self.rule(env, self._ctx or self.layer_context(hp, out)), grad_w, grad_b

    def install(self, rule: Rule | None, state: NetworkState, generator: torch.Generator, n_out: int) -> None:
        """Use ``rule`` for this layer's backward (None: plain autograd). Fixed random matrices come from
        ``generator`` in a fixed order, whether or not the rule reads them, so each depends on the seed alone. They
        are scaled like PyTorch's default initialisation of the weight they stand in for: R ~ N(0, s^2) and S = ±s
        with s = 1/sqrt(3 fan_in) (W's own std); RL ~ N(0, 1/(3 D_i)), drawn at the first step, when the layer's
        size D_i is known."""
        self.rule, self.state, self.n_out = rule, state, n_out
        self._noise_seed, self._feedback_seed = (int(v) for v in torch.randint(2**62, (2,), generator=generator))
        self.extras = tuple((n, _EXTRA[n]) for n in sorted(rule.inputs) if n in _EXTRA) if rule is not None else ()
        self._ctx = None
        w = self.op.weight
        std = 1.0 / (3.0 * w[0].numel()) ** 0.5
        r = torch.randn(w.shape, generator=generator) * std
        s = torch.where(torch.rand(w.shape, generator=generator) < 0.5, -std, std)
        for name, value in (("R", r), ("S", s), ("RL", None)):
            needed = rule is not None and name in rule.inputs and value is not None
            self.register_buffer(name, value.to(w.device, w.dtype) if needed else None, persistent=False)
        # Transposed views stay current: optimizers update parameters in place.
        self.views = {"W": w.transpose(0, 1)}
        self.views.update({n: getattr(self, n).transpose(0, 1) for n in ("R", "S") if getattr(self, n) is not None})

    def draw_feedback(self, hp: Tensor) -> Tensor:
        size = hp[0].numel()
        gen = torch.Generator().manual_seed(self._feedback_seed)
        self.RL = (torch.randn((self.n_out, size), generator=gen) / (3.0 * size) ** 0.5).to(hp.device, hp.dtype)
        return self.RL

    def layer_context(self, hp: Tensor, out: Tensor) -> LayerContext:
        """Built at the first step, when the per-sample shapes are known; they are fixed for a run."""
        shapes = (tuple(hp.shape[1:]), tuple(out.shape[1:]))
        stride, padding, dilation = self.geometry or (1, 0, 1)
        maps = ConvMaps(*shapes, stride=stride, padding=padding, dilation=dilation) if self.conv else LinearMaps(*shapes)
        self._ctx = LayerContext(maps, torch.Generator(device=hp.device).manual_seed(self._noise_seed))
        return self._ctx


class _ChainFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hp: Tensor, links: tuple[Link, ...], *params: Tensor | None) -> Tensor:
        inner = []   # hp_k, h_k per link: intermediates nothing else can modify, kept on ctx (cheaper per step)
        for k, link in enumerate(links):
            h = link.act.fn(hp)
            inner += (hp, h)
            hp = link.linear(h, params[2 * k], params[2 * k + 1])
        # The output goes through save_for_backward: keeping it on ctx would make a reference cycle.
        ctx.save_for_backward(hp)
        ctx.inner, ctx.links, ctx.weights = inner, links, params[::2]
        return hp

    @staticmethod
    def backward(ctx, b_next: Tensor):
        links, inner = ctx.links, ctx.inner
        (out,), weights = ctx.saved_tensors, ctx.weights
        n = len(links)
        grads: list[Tensor | None] = [None] * (2 * n)
        for k in range(n - 1, -1, -1):
            hp = inner[2 * k]
            b_next, grads[2 * k], grads[2 * k + 1] = links[k].backward_step(hp, inner[2 * k + 1], weights[k], out,
                                                                            b_next)
            out = hp   # layer k's pre-activation is layer k-1's hp_next
        return (b_next, None, *grads)


class Chain(nn.Module):
    """Links in sequence, each one's output the next one's input."""

    def __init__(self, *links: Link) -> None:
        super().__init__()
        self.links = nn.ModuleList(links)
        self._tuple = tuple(links)

    def forward(self, hp: Tensor) -> Tensor:
        params = []
        for link in self._tuple:
            params += (link.op.weight, link.op.bias)
        if self._tuple[0].rule is None:
            for k, link in enumerate(self._tuple):
                hp = link.linear(link.act.fn(hp), params[2 * k], params[2 * k + 1])
            return hp
        return _ChainFunction.apply(hp, self._tuple, *params)
