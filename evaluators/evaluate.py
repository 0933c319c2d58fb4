"""``evaluate(equation_text, task) -> EvalResult``: parse, compile, build, train. A pure function of its inputs.

Called in worker processes with equation text and a picklable ``TaskSpec``. A bad rule never crashes the caller:
a malformed equation or an exception inside the rule gives status "error", a NaN gives "diverged". A bad task
(unknown model or dataset, missing data) raises ``TaskError`` / ``DataError``: those are the user's to fix.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
import traceback

import torch

from evaluators.data import Splits, load, loader
from evaluators.models import ModelError, build_model, install_rule, validate
from evaluators.rule_link import Link
from evaluators.task import OPTIMIZERS, SCHEDULES, EvalResult, TaskSpec
from evaluators.train import train
from primitives import EquationError, compile, parse


class TaskError(ValueError):
    """A task that cannot run; the one-line message names the field and the fix."""


def check_task(task: TaskSpec) -> None:
    """Raise ``TaskError`` for a task no evaluation could run (checked before any training), ``DataError`` for a
    dataset that does not resolve (an unknown name; a plug-in that cannot be imported or lacks its function).

    Cheap: the dataset is resolved, not loaded (a plug-in's module is imported once per process).
    """
    loader(task.dataset)
    try:
        validate(task.model)
    except ModelError as exc:
        raise TaskError(str(exc)) from None
    for name, value, valid in (("optimizer", task.optimizer, OPTIMIZERS), ("schedule", task.schedule, SCHEDULES)):
        if value not in valid:
            raise TaskError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    for name in ("lr", "epochs", "batch_size"):
        if not getattr(task, name) > 0:
            raise TaskError(f"{name} must be positive, got {getattr(task, name)!r}")
    if task.weight_decay < 0:
        raise TaskError(f"weight_decay must be >= 0, got {task.weight_decay!r}")
    for name in ("diverge_step", "diverge_epoch"):
        value = getattr(task, name)
        if not (value == 0 or (math.isfinite(value) and value > 1)):
            raise TaskError(f"{name} must be 0 (off) or a factor above 1, got {value!r}")
    for stop in task.hurdles:
        if not (len(stop) == 2 and isinstance(stop[0], int) and stop[0] >= 1 and math.isfinite(stop[1])):
            raise TaskError(f"hurdles must be (epoch >= 1, accuracy) pairs, got {stop!r}")
    if task.device.startswith("cuda") and not torch.cuda.is_available():
        raise TaskError(f"device {task.device!r} requested but CUDA is not available here; use --device cpu")


@functools.lru_cache(maxsize=64)
def _check_once(task: TaskSpec) -> None:
    """``check_task``, once per distinct task in a process: a worker trains thousands of candidates on a handful of
    tasks (the search's lr grid and seeds), and a task that passed once passes again. A failing task is not cached."""
    check_task(task)


@functools.lru_cache(maxsize=4)
def _splits(dataset: str, root: str | None, split_seed: int, device: str) -> Splits:
    # Loaded once per worker process: a search trains thousands of candidates on the same data.
    return load(dataset, seed=split_seed, root=root).to(device)


def evaluate(equation_text: str, task: TaskSpec) -> EvalResult:
    """Train ``task``'s model with the backward equation ``equation_text``; fitness is validation accuracy.

    The same text and task give the same result on CPU (every random draw comes from ``task.seed``).
    ``equation_text=None`` trains with plain autograd (the reference the rules are measured against).
    """
    start = time.perf_counter()
    _check_once(task)
    splits = _splits(task.dataset, task.data_root, task.split_seed, task.device)
    try:
        rule = None if equation_text is None else compile(parse(equation_text))
    except EquationError as exc:
        return EvalResult("error", device=task.device, wall_time=time.perf_counter() - start, message=str(exc))
    devices = [torch.device(task.device)] if task.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):  # leave the caller's global RNG as it was
        torch.manual_seed(task.seed)
        model = None
        try:
            model = build_model(task.model, splits.input_shape, splits.num_classes).to(task.device)
            install_rule(model, rule, task.seed, splits.num_classes)
            result = train(model, splits, task)
        except Exception as exc:  # a rule that raises is a bad candidate, never a crashed search
            return EvalResult("error", device=task.device, wall_time=time.perf_counter() - start,
                              message=error_message(exc))
        finally:
            for module in model.modules() if model is not None else ():
                if isinstance(module, Link):
                    module.release()
    return dataclasses.replace(result, wall_time=time.perf_counter() - start)


def error_message(exc: BaseException) -> str:
    """One line for status "error": the exception and the function it came from."""
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} (at {where.name})".replace("\n", " ")
