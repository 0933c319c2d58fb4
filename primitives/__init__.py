"""The backward-equation DSL of Backprop Evolution (Alber et al. 2018) as strongly-typed DEAP primitive sets.

Usable on its own in any DEAP study: it imports neither ``evaluators`` nor ``gp_backprop``.
"""
from primitives.compile import Rule, compile_equation as compile  # noqa: A001 (the documented name)
from primitives.context import ConvMaps, LayerContext, LinearMaps, RunningMoments
from primitives.function_key import function_key
from primitives.functions import FUNCTIONS
from primitives.generate import mutate, random_equation
from primitives.key import canonical, key
from primitives.latex import latex
from primitives.operands import OPERANDS
from primitives.probe import CheckResult, check, make_probe
from primitives.pset import Equation, Fitness, default_pset, make_pset
from primitives.roles import Feedback, FeedbackT, Layer, Next, Out, Weight, WeightT
from primitives.seeds import SEEDS
from primitives.text import EquationError, format_equation as format, parse  # noqa: A001
from primitives.tree import is_paper_form

__all__ = [
    "make_pset", "default_pset", "parse", "format", "latex", "key", "canonical", "compile", "check", "SEEDS",
    "random_equation", "mutate", "is_paper_form", "Equation", "Fitness", "EquationError", "Rule", "LayerContext",
    "LinearMaps", "ConvMaps", "RunningMoments", "CheckResult", "make_probe", "OPERANDS", "FUNCTIONS",
    "Layer", "Next", "Out", "Weight", "WeightT", "Feedback", "FeedbackT",
    "function_key",
]
