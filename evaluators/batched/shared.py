"""One equation for the whole batch (one candidate at several seeds or learning rates): its rule applied once over
the member axis with ``torch.func.vmap`` instead of once per member.

Each member still reads its own operands, weights, feedback matrices and running statistics: the vmapped call gets
them stacked, and the running statistics go in and come out as stacked tensors, written back to each member's
``LayerContext`` so that the per-member path can take over at any step. Stochastic rules (noise, dropout) draw from
each member's own generator and keep the per-member path, as does a rule the first vmapped call fails on.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.func import vmap

from evaluators.rule_link import Link
from primitives import OPERANDS, LayerContext, RunningMoments

_STATIC = ("R", "S", "RL")


class _VmapCache(dict):
    """(names, started) -> vmap of ``one`` with those two arguments bound."""

    def __init__(self, one) -> None:
        super().__init__()
        self.one = one

    def __missing__(self, key: tuple[tuple[str, ...], tuple[str, ...]]):
        names, started = key
        self[key] = fn = vmap(lambda *tensors: self.one(names, started, *tensors))
        return fn


class SharedRule:
    """The rule of ``members`` (all the same equation) as one vmapped call over their row blocks."""

    def __init__(self, members: list[Link]) -> None:
        self.members = members
        self.rule = members[0].rule
        self.inputs = self.rule.inputs
        self.running = tuple(sorted({OPERANDS[n].base for n in self.rule.reads if OPERANDS[n].form}))
        self.static: dict[str, Tensor] = {}
        self.ready = False
        # One vmapped function per (operand names, running statistics started): both fixed after the first steps.
        self._calls = _VmapCache(self._one)

    @staticmethod
    def applies(members: list[Link]) -> bool:
        rules = [ln.rule for ln in members]
        return (len(members) > 1 and rules[0] is not None and not rules[0].stochastic
                and all(r is not None and r.text == rules[0].text for r in rules))

    def _prepare(self, hp: Tensor, n: int) -> None:
        """First step: each member's context (its maps, its noise generator) and DFA matrix, as ``Link`` makes
        them; then the fixed matrices stacked once."""
        for j, ln in enumerate(self.members):
            rows = hp[j * n:(j + 1) * n]
            if ln.context is None:
                ln.make_context(rows)
            if "RL" in self.inputs and ln.RL is None:
                ln.draw_feedback(rows)
        self.static = {name: torch.stack([ln.static[name] for ln in self.members])
                       for name in _STATIC if name in self.inputs}
        self.maps = self.members[0].context.maps
        self.ready = True

    def _one(self, names: tuple[str, ...], started: tuple[str, ...], *tensors: Tensor) -> tuple[Tensor, ...]:
        """One member's rule value and running statistics. Flat tensors in and out: vmap's pytree handling of
        dicts costs as much as a small rule itself. ``tensors``: the operands ``names``, then the means and the
        squares of the ``started`` running operands."""
        env = dict(zip(names, tensors))
        means, squares = tensors[len(names):len(names) + len(started)], tensors[len(names) + len(started):]
        stats = {name: RunningMoments() for name in self.running}
        for name, mean, sq in zip(started, means, squares):
            stats[name].mean, stats[name].sq = mean, sq
        value = self.rule(env, LayerContext(self.maps, None, stats))
        return (value, *(stats[n].mean for n in self.running), *(stats[n].sq for n in self.running))

    def __call__(self, weight: Tensor, step: dict[str, Tensor], g: Tensor, bL: Tensor | None) -> Tensor:
        k = len(self.members)
        n = g.shape[0] // k
        if not self.ready:
            self._prepare(step["hp"], n)
        rows = lambda t: t.reshape(k, n, *t.shape[1:])   # noqa: E731
        hp, h = step["hp"], step["h"]
        env = {"W": weight.detach().transpose(1, 2), **self.static, "hp": rows(hp), "h": rows(h)}
        env = {name: value for name, value in env.items() if name in self.inputs}
        env["g"] = rows(g)   # always one batched input, even for a rule that reads no operand
        for name in ("gh", "b_next", "hp_next"):
            if name in self.inputs:
                env[name] = rows(step[name])
        if "dact" in self.inputs:
            env["dact"] = rows(self.members[0].derivative(hp, h))
        if "bL" in self.inputs:
            env["bL"] = rows(bL)
        contexts = [ln.context for ln in self.members]
        started = tuple(n for n in self.running if n in contexts[0].stats)
        stats = [torch.stack([c.stats[n].mean for c in contexts]) for n in started]
        stats += [torch.stack([c.stats[n].sq for c in contexts]) for n in started]
        names = tuple(env)
        value, *out = self._calls[(names, started)](*env.values(), *stats)
        if value.shape != env["g"].shape or value.dtype != g.dtype:
            raise ValueError("the rule's value does not fit g")   # the per-member path reports it as evaluate does
        means, squares = out[:len(self.running)], out[len(self.running):]
        for j, c in enumerate(contexts):
            for i, name in enumerate(self.running):
                moments = c.moments(name)
                moments.mean, moments.sq = means[i][j], squares[i][j]
        return value.reshape(g.shape)
