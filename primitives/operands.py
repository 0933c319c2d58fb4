"""The operands of a backward equation for layer i (Backprop Evolution, Appendix A), with their roles and LaTeX.

Raw operands are supplied by whoever trains the network; derived ones are computed from them by the compiled rule,
so an evaluator provides only what an equation needs (``Rule.inputs``).
"""
from __future__ import annotations

from dataclasses import dataclass

from primitives.roles import Feedback, Layer, Next, Out, Role, Weight

RUNNING_DECAY = 0.9
RUNNING_FORMS = ("mhat", "shat", "bn")


@dataclass(frozen=True)
class Operand:
    name: str
    role: type[Role]
    latex: str
    doc: str
    base: str = ""           # for a running form: the operand it summarises
    form: str = ""           # "", "mhat", "shat" or "bn"
    derived_from: tuple[str, ...] = ()  # empty for raw operands


_BASE = (
    Operand("g", Layer, "g", "standard backprop value at layer i's pre-activation, (b_next · W^t) ⊙ dact",
            derived_from=("gh", "dact")),
    Operand("gh", Layer, "g_{h}", "backprop value at layer i's post-activation, b_next · W^t",
            derived_from=("b_next", "W")),
    Operand("dact", Layer, r"\sigma'", "activation derivative dh_i/dh^p_i at hp"),
    Operand("hp", Layer, "h^{p}", "pre-activation of layer i"),
    Operand("h", Layer, "h", "post-activation of layer i"),
    Operand("fa", Layer, r"b^{p}_{i+1} R^{\top}", "feedback-alignment value b_next · R^t",
            derived_from=("b_next", "R")),
    Operand("fa_dact", Layer, r"(b^{p}_{i+1} R^{\top}) \odot \sigma'", "fa ⊙ dact", derived_from=("fa", "dact")),
    Operand("dfa", Layer, r"b^{p}_{L} R_{L}", "direct-feedback-alignment value bL · RL", derived_from=("bL", "RL")),
    Operand("dfa_dact", Layer, r"(b^{p}_{L} R_{L}) \odot \sigma'", "dfa ⊙ dact", derived_from=("dfa", "dact")),
    Operand("hp_next", Next, "h^{p}_{i+1}", "pre-activation of layer i+1"),
    Operand("b_next", Next, "b^{p}_{i+1}", "backward value at layer i+1's pre-activation (the searched value above)"),
    Operand("bL", Out, "b^{p}_{L}", "backward value at the output layer's pre-activation (from the loss)"),
    Operand("W", Weight, "W", "weights between layers i and i+1 (maps b_next down: b_next · W^t)"),
    Operand("sgnW", Weight, r"\operatorname{sgn}(W)", "sign of W", derived_from=("W",)),
    # The trainer draws R, S and RL once per network and keeps them fixed; evaluators scales them like W's init.
    Operand("R", Weight, "R", "fixed Gaussian matrix shaped like W"),
    Operand("S", Weight, "S", "fixed Bernoulli(0.5) sign matrix shaped like W (entries ±s)"),
    Operand("RL", Feedback, "R_{L}", "fixed Gaussian matrix from the output to layer i (the DFA matrix)"),
)

_RUNNING_LATEX = {"mhat": r"\hat{m}(%s)", "shat": r"\hat{s}(%s)", "bn": r"\operatorname{bn}(%s)"}
_RUNNING_DOC = {
    "mhat": "running mean of %s",
    "shat": "running standard deviation of %s",
    "bn": "%s normalised by its running mean and standard deviation",
}


def running_name(form: str, base: str) -> str:
    return f"{form}({base})"


def _running_forms() -> tuple[Operand, ...]:
    # Running forms exist for the batch-shaped operands only: a weight's running average over steps is itself.
    out = []
    for op in _BASE:
        if op.role in (Layer, Next, Out):
            for form in RUNNING_FORMS:
                out.append(Operand(running_name(form, op.name), op.role, _RUNNING_LATEX[form] % op.latex,
                                   _RUNNING_DOC[form] % op.name, base=op.name, form=form))
    return tuple(out)


OPERANDS: dict[str, Operand] = {op.name: op for op in _BASE + _running_forms()}
BASE_OPERANDS: tuple[str, ...] = tuple(op.name for op in _BASE)
RAW_OPERANDS: tuple[str, ...] = tuple(op.name for op in _BASE if not op.derived_from)
