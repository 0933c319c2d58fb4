"""One network for K members: their models, built one by one as ``evaluate`` builds them, merged into one.

``merge`` takes member 0's model as the skeleton (its own ``forward`` code runs unchanged on member-major rows)
and swaps each parameterised layer for a stacked one and each ``Link`` for a ``BatchedLink``. Any other module that
holds parameters, or a ``Link`` subclass (ConvNet8's dropout link, which draws from the global RNG), makes the
model ``Unbatchable``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from evaluators.activations import Activation
from evaluators.batched.link import BatchedLink, BatchState, member_activation
from evaluators.batched.stacked import STACKED, Stacked, Unbatchable
from evaluators.rule_link import Link


class BatchedModel(nn.Module):
    """The merged network plus what the trainer needs: the shared state and ``select`` to drop members."""

    def __init__(self, net: nn.Module, state: BatchState) -> None:
        super().__init__()
        self.net, self.state = net, state
        self.links = [m for m in net.modules() if isinstance(m, BatchedLink)]
        self.stacked = [m for m in net.modules() if isinstance(m, Stacked)]
        self._bl_hook = net.register_forward_hook(self._catch_output_error)

    def _catch_output_error(self, module: nn.Module, args: tuple, logits: Tensor) -> None:
        if logits.requires_grad and any(ln.reads_bL for ln in self.links):
            logits.register_hook(self.state.set_bL)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return _ContiguousGrad.apply(out) if out.requires_grad else out

    @property
    def k(self) -> int:
        return self.state.k

    def select(self, keep: list[int]) -> None:
        """Keep the members at row-block positions ``keep`` (in order), with their gradients and running state."""
        index = torch.tensor(keep, dtype=torch.long, device=next(self.parameters()).device)
        for m in self.stacked:
            m.select(index)
        for ln in self.links:
            ln.bind([ln.members[j] for j in keep])
        self.state.k = len(keep)


class _ContiguousGrad(torch.autograd.Function):
    """Identity forward; backward: the output's gradient, contiguous. With two or more members the loss's gradient
    arrives contiguous (undoing its member-major view takes a copy); with one member left it arrives transposed (no
    copy needed), and what reads it (the output error bL, the last layer's bias sum) rounds differently. Contiguous
    always, a member's result does not depend on the others ending before it (a no-op with two or more)."""

    @staticmethod
    def forward(ctx, out: Tensor) -> Tensor:
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous()


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def merge(models: list[nn.Module]) -> BatchedModel:
    """Merge K same-architecture models (rules already installed) into one ``BatchedModel``; raises
    ``Unbatchable`` when the architecture holds a layer that cannot be stacked."""
    state = BatchState(len(models))
    skeleton = models[0]
    for handle in getattr(skeleton, "_bl_hooks", ()):   # install_rule's bL hook: the batch has its own
        handle.remove()
    tables = [dict(m.named_modules()) for m in models]
    swaps: list[tuple[str, nn.Module]] = []
    inside_link: list[str] = []
    for name, module in skeleton.named_modules():
        if any(name.startswith(prefix + ".") for prefix in inside_link):
            continue
        same = [table[name] for table in tables]
        if isinstance(module, Link):
            if type(module) is not Link or type(module.op) not in STACKED:
                raise Unbatchable(f"{type(module).__name__} over {type(module.op).__name__}")
            op = STACKED[type(module.op)]([ln.op for ln in same])
            swaps.append((name, BatchedLink(same, op, module.act, state)))
            inside_link.append(name)
        elif type(module) in STACKED:
            swaps.append((name, STACKED[type(module)](same)))
        elif any(True for _ in module.parameters(recurse=False)):
            raise Unbatchable(f"layer {name!r} ({type(module).__name__}) has parameters")
    for name, module in swaps:
        _replace(skeleton, name, module)
    for module in skeleton.modules():   # WRN blocks apply their activation outside links too
        if isinstance(getattr(module, "act", None), Activation) and not isinstance(module, Link):
            module.act = member_activation(module.act, state)
    return BatchedModel(skeleton, state)
