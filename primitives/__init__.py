"""The backward-equation DSL of Backprop Evolution (Alber et al. 2018) as strongly-typed DEAP primitive sets.

Usable on its own in any DEAP study: it imports neither ``evaluators`` nor ``gp_backprop``.
"""
from primitives.compile import Rule, compile_equation as compile  # noqa: A001 (the documented name)
from primitives.context import ConvMaps, LayerContext, LinearMaps, RunningMoments
from primitives.formatting import format_equation as format  # noqa: A001 (the documented name)
from primitives.function_key import function_key
from primitives.functions import FUNCTIONS
from primitives.generate import mutate, random_equation
from primitives.key import canonical, key
from primitives.latex import latex
from primitives.operands import OPERANDS
from primitives.probe import CheckResult, check, make_probe
from primitives.pset import Equation, Fitness, default_pset, make_pset
from primitives.register import register_function, unregister_function, validate_function
from primitives.roles import Feedback, FeedbackT, Layer, Next, Out, Weight, WeightT
from primitives.seeds import SEEDS
from primitives.text import EquationError, parse
from primitives.tree import display_name, is_paper_form
from primitives.words import words

__all__ = [
    "make_pset", "default_pset", "parse", "format", "latex", "words", "key", "canonical", "compile", "check", "SEEDS",
    "random_equation", "mutate", "is_paper_form", "display_name", "Equation", "Fitness", "EquationError", "Rule",
    "LayerContext", "LinearMaps", "ConvMaps", "RunningMoments", "CheckResult", "make_probe", "OPERANDS", "FUNCTIONS",
    "Layer", "Next", "Out", "Weight", "WeightT", "Feedback", "FeedbackT",
    "register_function", "unregister_function", "validate_function",
    "function_key",
]
