"""Rule-driven backward. A ``Link`` is searchable layer i's activation followed by layer i+1's linear map.

The forward is ordinary autograd; a gradient hook on layer i's pre-activation replaces the standard value ``g`` that
autograd delivers there with the rule's value, which then propagates further down through ordinary autograd. So
``g`` (and, with a hook on h_i, ``gh``) come from autograd's own backward at no extra cost, and layer i+1's weight
gradient is autograd's, formed from the arriving ``b_next`` with the standard local Jacobian (ΔW = b ∂h^p/∂W,
Backprop Evolution §2). Pooling, batch norm, residual additions and the input layer keep standard gradients.

Why a hook rather than an ``autograd.Function``: the hook body is the same plain tensor math, but the engine calls
a tensor hook directly, while a Function's backward goes through a Python wrapper, and on small networks that
per-layer cost is the overhead (digits MLP: 1.09 against 1.15 for an identity Function gate; rule_overhead.py).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from evaluators.activations import Activation
from primitives import ConvMaps, LayerContext, LinearMaps, Rule

# Autograd hands the rule g (and gh) for free: it computes them on its way down anyway.
PROVIDED = frozenset({"g", "gh"})


class NetworkState:
    """Shared by a network's links: the output error bL of the current backward pass."""

    def __init__(self) -> None:
        self.bL: Tensor | None = None

    def set_bL(self, grad: Tensor) -> None:
        self.bL = grad


# Raw operands computed per step, only when the rule reads them. hp, h and g are always in the environment (free);
# W, R, S and RL are fixed objects per run and sit in each link's static environment.
_PER_STEP = {
    "gh": lambda ln, hp, h: ln.gh,
    "dact": lambda ln, hp, h: ln.derivative(hp, h),
    "bL": lambda ln, hp, h: ln.state.bL,
    "b_next": lambda ln, hp, h: ln.b_next,
    "hp_next": lambda ln, hp, h: ln.hp_next,
    "RL": lambda ln, hp, h: ln.draw_feedback(hp),   # first step only: then it is static
}


class Link(nn.Module):
    """Activation of searchable layer i, then layer i+1's ``nn.Linear`` or ``nn.Conv2d`` (after a flatten if asked).
    Without a rule it is plain autograd: the same module is its own baseline."""

    def __init__(self, act: Activation, op: nn.Linear | nn.Conv2d, flatten: bool = False,
                 shared_input: bool = False) -> None:
        """``shared_input``: hp also feeds other modules (a WRN projection shortcut); the rule then replaces only
        this link's share of hp's gradient, and the other paths keep their standard gradients."""
        super().__init__()
        self.act, self.op, self.flatten, self.shared_input = act, op, flatten, shared_input
        self.conv = isinstance(op, nn.Conv2d)
        self.derivative = act.derivative
        self.rule: Rule | None = None
        self.state = NetworkState()
        self.static: dict[str, Tensor] = {}   # W, R, S, RL in the paper's orientation, as views made once
        self.per_step: tuple = ()
        self.context: LayerContext | None = None
        self.capture = False                 # the rule reads b_next or hp_next: keep them from this step
        self.capture_gh = False
        self.gh = self.b_next = self.hp_next = None   # this step's values, for the hooks
        self.step: dict[str, Tensor] = {}   # hp, h of this step (a plain dict: nn.Module.__setattr__ is slow)
        self._next_shape: tuple[int, ...] = ()
        self._noise_seed = self._feedback_seed = self.n_out = 0

    def forward(self, hp: Tensor) -> Tensor:
        if self.rule is None or not hp.requires_grad:
            h = self.act.fn(hp)
            return self.op(h.flatten(1) if self.flatten else h)
        if self.shared_input:
            hp = hp.view_as(hp)              # a node of its own: its gradient is this link's share only
        h = self.act.fn(hp)
        out = self.op(h.flatten(1) if self.flatten else h)
        step = self.step
        step["hp"], step["h"] = hp, h
        hp.register_hook(self._rule_hook)
        if self.capture_gh:
            h.register_hook(self._catch_gh)
        if not self._next_shape:
            self._next_shape = tuple(out.shape[1:])
        if self.capture:
            self.hp_next = out
            # A pre-hook of out's node runs after out's tensor hooks, one of which may be the rule of the layer
            # above replacing the gradient: b_next is the searched value, as the paper defines it.
            out.grad_fn.register_prehook(self._catch_b_next)
        return out

    def release(self) -> None:
        """Drop the last step's tensors. Their autograd graph holds this link's hooks, a cycle through C++ that
        Python's collector cannot see: kept, it would keep the model alive after its training."""
        self.step.clear()
        self.gh = self.b_next = self.hp_next = None

    def _catch_b_next(self, grad_outputs: tuple[Tensor, ...]) -> None:
        self.b_next = grad_outputs[0]

    def _catch_gh(self, grad: Tensor) -> None:
        self.gh = grad

    def _rule_hook(self, g: Tensor) -> Tensor:
        step = self.step
        return self.rule_value(step["hp"], step["h"], g)

    def rule_value(self, hp: Tensor, h: Tensor, g: Tensor) -> Tensor:
        """The rule's backward value at hp for this step (the batched evaluator calls it on one member's rows)."""
        env = self.static.copy()
        env["hp"], env["h"], env["g"] = hp, h, g
        for name, get in self.per_step:
            env[name] = get(self, hp, h)
        # No finiteness check per layer: a NaN or Inf here enters the weight gradient of the layer below, so the
        # next step's loss is non-finite and the trainer stops the run then.
        return self.rule(env, self.context or self.make_context(hp))

    def install(self, rule: Rule | None, state: NetworkState, generator: torch.Generator, n_out: int) -> None:
        """Use ``rule`` for this layer's backward (None: plain autograd). Fixed random matrices come from
        ``generator`` in a fixed order, whether or not the rule reads them, so each depends on the seed alone. They
        are scaled like PyTorch's default initialisation of the weight they stand in for: R ~ N(0, s^2) and S = ±s
        with s = 1/sqrt(3 fan_in) (W's own std); RL ~ N(0, 1/(3 D_i)), drawn at the first step, when the layer's
        size D_i is known."""
        self.rule = rule.given(PROVIDED) if rule is not None else None
        self.state, self.n_out = state, n_out
        self._noise_seed, self._feedback_seed = (int(v) for v in torch.randint(2**62, (2,), generator=generator))
        needs = self.rule.inputs if rule is not None else frozenset()
        self.per_step = tuple((n, _PER_STEP[n]) for n in sorted(needs & _PER_STEP.keys()))
        self.capture = bool(needs & {"b_next", "hp_next"})
        self.capture_gh = "gh" in needs
        self.context, self._next_shape, self.b_next, self.hp_next = None, (), None, None
        w = self.op.weight
        std = 1.0 / (3.0 * w[0].numel()) ** 0.5
        r = torch.randn(w.shape, generator=generator) * std
        s = torch.where(torch.rand(w.shape, generator=generator) < 0.5, -std, std)
        self.RL: Tensor | None = None
        for name, value in (("R", r), ("S", s)):
            setattr(self, name, value.to(w.device, w.dtype) if name in needs else None)
        # Transposed views stay current: optimizers update parameters in place.
        self.static = {"W": w.detach().transpose(0, 1)}   # detached: no autograd history kept on the link
        self.static.update({n: getattr(self, n).transpose(0, 1) for n in ("R", "S") if getattr(self, n) is not None})

    def draw_feedback(self, hp: Tensor) -> Tensor:
        size = hp[0].numel()
        gen = torch.Generator().manual_seed(self._feedback_seed)
        self.RL = (torch.randn((self.n_out, size), generator=gen) / (3.0 * size) ** 0.5).to(hp.device, hp.dtype)
        self.static["RL"] = self.RL
        self.per_step = tuple(item for item in self.per_step if item[0] != "RL")
        return self.RL

    def make_context(self, hp: Tensor) -> LayerContext:
        """Built at the first step, when the per-sample shapes are known; they are fixed for a run."""
        shapes = (tuple(hp.shape[1:]), self._next_shape)
        op = self.op
        maps = (ConvMaps(*shapes, stride=op.stride, padding=op.padding, dilation=op.dilation) if self.conv
                else LinearMaps(*shapes))
        self.context = LayerContext(maps, torch.Generator(device=hp.device).manual_seed(self._noise_seed))
        return self.context


class Chain(nn.Sequential):
    """Links in sequence, each one's output the next one's input."""
