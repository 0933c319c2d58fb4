"""Train real networks with a candidate backward equation (no search code, no MLflow).

``evaluate(equation_text, task) -> EvalResult`` is the whole job (``evaluate_many`` trains many members as one batched
network); models, data and the training loop are reusable.
"""
from evaluators.activations import ACTIVATIONS, Activation
from evaluators.data import DATASETS, DataError, load
from evaluators.evaluate import TaskError, check_task, evaluate
from evaluators.models import ARCHS, ModelError, build_model, install_rule
from evaluators.population import evaluate_many
from evaluators.task import STATUSES, EvalResult, ModelSpec, TaskSpec

__all__ = [
    "evaluate", "evaluate_many", "TaskSpec", "ModelSpec", "EvalResult", "STATUSES", "check_task", "TaskError",
    "DataError", "DATASETS", "load", "ACTIVATIONS", "Activation", "ARCHS", "build_model", "install_rule", "ModelError",
]
