"""The batched ``Link``: one activation and one stacked layer for K members, each member's rule on its own rows.

The forward is ``Link``'s on member-major rows. The backward hook splits autograd's ``g`` (and the captured
``gh``, ``b_next``, ``hp_next``, ``bL``) into the members' row blocks and hands each block to that member's own
``Link`` (its rule, fixed feedback matrices, noise generator and running statistics, all built by ``install_rule``
exactly as ``evaluate`` builds them), then joins the blocks again; when all members share one deterministic
equation, it is applied once over the member axis instead (``shared``). A member whose rule raises is recorded in the
shared ``BatchState`` and gets zeros from then on in this backward; the trainer drops it before the weight update.
When no member's rule reads ``g`` or ``gh`` (FA, DFA, ...), autograd is not asked for them at all (``_Inject``): the
input gradient of the layer above and the activation's backward, which the rule would throw away, are never formed.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from evaluators.activations import Activation
from evaluators.batched.shared import SharedRule
from evaluators.evaluate import error_message
from evaluators.ftprop import RULES
from evaluators.rule_link import Link

# FTPROP-MB's direct activations: their backward reads the batch size (g.shape[0]), so they see (B, K, ...) views.
_DIRECT = frozenset(f"{fwd}_{rule}" for fwd, rules in RULES.items() for rule in rules)


class BatchState:
    """Shared by a batch's links: the number of members, the output error of this backward, and the members whose
    rule raised in it (row-block index -> the message ``evaluate`` would give)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.bL: Tensor | None = None
        self.failed: dict[int, str] = {}

    def set_bL(self, grad: Tensor) -> None:
        self.bL = grad


def member_activation(act: Activation, state: BatchState) -> Activation:
    """``act`` for member-major rows. Elementwise activations are returned as they are; a direct FTPROP activation
    runs on a (B, K, ...) view, so its backward divides by each member's own batch size as in ``evaluate``."""
    if act.name not in _DIRECT:
        return act
    fn = act.fn

    def rows_fn(z: Tensor) -> Tensor:
        k = state.k
        view = z.reshape(k, z.shape[0] // k, *z.shape[1:]).transpose(0, 1)
        return fn(view).transpose(0, 1).reshape(z.shape)
    return Activation(act.name, rows_fn, act.derivative, act.hard_threshold)


def _shape_error(g: Tensor, value: Tensor) -> str | None:
    """The message autograd gives ``evaluate`` when a rule's value does not fit g."""
    prefix = "RuntimeError: hook '_rule_hook' has changed the"
    if value.shape != g.shape:
        return f"{prefix} size of value (at _engine_run_backward)"
    if value.dtype != g.dtype:
        return (f"{prefix} type of value (was {g.type()} got {value.type()}) (at _engine_run_backward)")
    return None


class _Inject(torch.autograd.Function):
    """Forward: ``out`` unchanged. Backward: ``out``'s gradient (b_next) passes on to the layer above's weights, and
    ``hp`` gets the link's rule value, computed from b_next, in place of the g that autograd never formed."""

    @staticmethod
    def forward(ctx, out: Tensor, hp: Tensor, link: BatchedLink) -> Tensor:
        ctx.link = link
        return out.view_as(out)

    @staticmethod
    def backward(ctx, b_next: Tensor) -> tuple[Tensor, Tensor, None]:
        return b_next, ctx.link._direct_value(b_next), None


class BatchedLink(nn.Module):
    """K members' ``Link`` at one position of the network, over a stacked layer ``op``."""

    def __init__(self, members: list[Link], op: nn.Module, act: Activation, state: BatchState) -> None:
        super().__init__()
        first = members[0]
        self.op, self.flatten, self.shared_input = op, first.flatten, first.shared_input
        self.act_fn: Callable[[Tensor], Tensor] = member_activation(act, state).fn
        self.state = state
        self.step: dict[str, Tensor] = {}   # this step's hp, h, gh, b_next, hp_next (a dict: Module setattr is slow)
        self.bind(members)

    def bind(self, members: list[Link]) -> None:
        """Use ``members`` (after a change of the stacked weights too): each reads its slice of the stacked W."""
        self.members = members
        rules = [ln for ln in members if ln.rule is not None]
        self.ruled = bool(rules)
        self.capture = any(ln.capture for ln in rules)
        self.capture_gh = any(ln.capture_gh for ln in rules)
        self.reads_bL = any("bL" in ln.rule.inputs for ln in rules)
        # Every member has a rule and none reads autograd's g or gh: the backward skips forming them.
        self.direct = len(rules) == len(members) and not any(ln.rule.inputs & {"g", "gh"} for ln in rules)
        w = self.op.weight.detach()
        for j, ln in enumerate(members):
            ln.static["W"] = w[j].transpose(0, 1)   # a view: it follows the in-place weight updates
        self.shared = SharedRule(members) if SharedRule.applies(members) else None

    def release(self) -> None:
        """Drop the last step's tensors. Their autograd graph holds this link's hooks, a cycle through C++ that
        Python's collector cannot see: kept, it would keep the whole batch (weights, feedback matrices) alive."""
        self.step.clear()
        for ln in self.members:
            ln.release()

    def forward(self, hp: Tensor) -> Tensor:
        if not self.ruled or not hp.requires_grad:
            h = self.act_fn(hp)
            return self.op(h.flatten(1) if self.flatten else h)
        if self.direct:
            return self._forward_direct(hp)
        if self.shared_input:
            hp = hp.view_as(hp)
        h = self.act_fn(hp)
        out = self.op(h.flatten(1) if self.flatten else h)
        self.step["hp"], self.step["h"] = hp, h
        hp.register_hook(self._rule_hook)
        if self.capture_gh:
            h.register_hook(self._catch_gh)
        if self.capture:
            self.step["hp_next"] = out
            out.grad_fn.register_prehook(self._catch_b_next)
        for ln in self.members:
            if not ln._next_shape:
                ln._next_shape = tuple(out.shape[1:])
        return out

    def _forward_direct(self, hp: Tensor) -> Tensor:
        """The forward when the rule needs no g: the layer above sees a detached h, so autograd forms only its
        weight gradients, and ``_Inject`` hands the rule's value to hp (plus, for a shared hp, the other paths')."""
        value = hp.detach()
        h = self.act_fn(value)
        out = self.op(h.flatten(1) if self.flatten else h)
        self.step["hp"], self.step["h"], self.step["hp_next"] = value, h, out
        for ln in self.members:
            if not ln._next_shape:
                ln._next_shape = tuple(out.shape[1:])
        return _Inject.apply(out, hp, self)

    def _direct_value(self, b_next: Tensor) -> Tensor:
        self.step["b_next"] = b_next
        hp = self.step["hp"]
        # g's shape and dtype without its values: no rule here reads it (``direct``), the hooks' checks need them.
        return self._rule_hook(hp.new_zeros(()).expand(hp.shape))

    def _catch_b_next(self, grad_outputs: tuple[Tensor, ...]) -> None:
        self.step["b_next"] = grad_outputs[0]

    def _catch_gh(self, grad: Tensor) -> None:
        self.step["gh"] = grad

    def _rule_hook(self, g: Tensor) -> Tensor:
        step = self.step
        failed = self.state.failed
        if self.shared is not None and not failed:
            try:
                return self.shared(self.op.weight, step, g, self.state.bL)
            except Exception:  # not vmappable, or a member's rule raised: the per-member path from now on
                self.shared = None
        hp, h = step["hp"], step["h"]
        n = g.shape[0] // len(self.members)
        blocks = []
        for j, ln in enumerate(self.members):
            rows = slice(j * n, (j + 1) * n)
            g_j = g[rows]
            if ln.rule is None or j in failed:
                blocks.append(g_j)
                continue
            per_step = ln.__dict__   # the member link's per-step values, bypassing Module.__setattr__
            if ln.capture_gh:
                per_step["gh"] = step["gh"][rows]
            if ln.capture:
                per_step["b_next"], per_step["hp_next"] = step["b_next"][rows], step["hp_next"][rows]
            if self.reads_bL:
                ln.state.bL = self.state.bL[rows]
            try:
                value = ln.rule_value(hp[rows], h[rows], g_j)
                problem = _shape_error(g_j, value)
            except Exception as exc:  # this member's candidate is bad; the others go on
                value, problem = None, error_message(exc)
            if problem is not None:
                failed[j] = problem
                value = torch.zeros_like(g_j)
            blocks.append(value)
        return torch.cat(blocks)
