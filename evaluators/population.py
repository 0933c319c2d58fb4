"""``evaluate_many(members) -> list[EvalResult]``: train many (equation, task) members as one batched network.

A search trains each candidate at several seeds and learning rates, and a small network's training step is mostly
per-step overhead, so K members trained as one network (stacked weights, one kernel per layer for all) cost far
less per member than K calls of ``evaluate``. Each member's result is what ``evaluate`` gives it, up to the order
in which batched kernels sum (benchmarks/README.md has the speed-up, tests/evaluators/test_evaluate_many.py the
equivalence).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from evaluators.batched.model import merge
from evaluators.batched.optim import family
from evaluators.batched.sizing import group_sizes, member_bytes, memory_budget
from evaluators.batched.stacked import Unbatchable
from evaluators.batched.train import BatchTrainer
from evaluators.data import Splits
from evaluators.evaluate import TaskError, _splits, check_task, error_message, evaluate
from evaluators.models import build_model, install_rule
from evaluators.task import EvalResult, TaskSpec
from primitives import EquationError, Rule, compile, parse

# What members of one call must share: the data, the network, the batches and the budget (the rest may differ).
SHARED = ("dataset", "data_root", "split_seed", "model", "batch_size", "epochs", "max_train_batches", "device")
# Architectures whose layers all stack (the others, e.g. ConvNet8 with its global-RNG dropout, train one by one).
BATCHED_ARCHS = ("mlp", "convnet", "wrn", "convnet4")

Member = tuple[str | None, TaskSpec]
OnResult = Callable[[int, EvalResult], None]


def check_members(members: Sequence[Member]) -> None:
    """Raise ``TaskError`` unless every member's task runs and all share the ``SHARED`` settings."""
    first = members[0][1]
    for i, (_, task) in enumerate(members):
        if not isinstance(task, TaskSpec):
            raise TaskError(f"member {i} is not an (equation text or None, TaskSpec) pair: got {type(task).__name__}")
        check_task(task)
        for name in SHARED:
            if getattr(task, name) != getattr(first, name):
                raise TaskError(f"evaluate_many members must share {name}: member {i} has {getattr(task, name)!r}, "
                                f"member 0 {getattr(first, name)!r}; call evaluate_many once per {name}")


def evaluate_many(members: Sequence[Member], batch: str | int = "auto",
                  on_result: OnResult | None = None) -> list[EvalResult]:
    """Train every ``(equation_text | None, TaskSpec)`` member; one ``EvalResult`` per member, in order.

    Members share dataset, model, batch size, epochs, ``max_train_batches`` and device (else ``TaskError``); seeds,
    learning rates, optimizers, schedules and hurdles may differ. Each member is trained as ``evaluate`` trains it,
    with its own initial weights, feedback matrices, noise, running averages and batch order, all drawn from its
    seed exactly as ``evaluate`` draws them; its rule sees only its own rows. A member that errors, diverges or
    misses its hurdle gets ``evaluate``'s status and message and leaves the batch; the others are unaffected.
    ``wall_time`` is the member's share of its batch's time.

    ``batch``: members per batched network; "auto" sizes groups from a memory budget (``batched.sizing``). SGD and
    Adam members train in separate groups. A member's result does not depend on the group it trains in, a group of
    one included (so a search that resumes, or runs on other workers, trains it to the same bits). Architectures outside
    ``BATCHED_ARCHS`` (ConvNet8) are trained one by one with ``evaluate``: same results, without the speed-up.

    ``on_result(i, result)`` is called for member ``i`` as soon as its result is final (a member that diverges early
    is reported then, not at the end), once per member: a worker can pass results on before a later fault.
    """
    members = list(members)
    if not members:
        return []
    check_members(members)
    if batch != "auto" and not (isinstance(batch, int) and batch >= 1):
        raise TaskError(f"batch must be 'auto' or a positive integer, got {batch!r}")
    first = members[0][1]
    results: list[EvalResult | None] = [None] * len(members)

    def settle(i: int, result: EvalResult) -> None:
        results[i] = result
        if on_result is not None:
            on_result(i, result)
    if first.model.arch not in BATCHED_ARCHS:
        for i, (text, task) in enumerate(members):
            settle(i, evaluate(text, task))
        return results
    splits = _splits(first.dataset, first.data_root, first.split_seed, first.device)
    rules: dict[int, Rule | None] = {}
    for i, (text, task) in enumerate(members):
        start = time.perf_counter()
        try:
            rules[i] = None if text is None else compile(parse(text))
        except EquationError as exc:
            settle(i, EvalResult("error", device=task.device, wall_time=time.perf_counter() - start,
                                 message=str(exc)))
    for fam in ("sgd", "adam"):
        indices = [i for i in rules if family(members[i][1]) == fam]
        for group in _groups(indices, batch, splits, first):
            _train_group([rules[i] for i in group], [members[i] for i in group], splits,
                         lambda j, result, group=group: settle(group[j], result))
    return results


def _groups(indices: list[int], batch: str | int, splits: Splits, task: TaskSpec) -> list[list[int]]:
    if not indices:
        return []
    if batch == "auto":
        train = splits.train.x
        probe = _build(None, task, splits)
        per_member = member_bytes(probe, splits.input_shape, task.batch_size, train.numel() * train.element_size())
        sizes = group_sizes(len(indices), per_member, memory_budget(task.device))
    else:
        sizes = [batch] * (len(indices) // batch) + ([len(indices) % batch] if len(indices) % batch else [])
    starts = [sum(sizes[:g]) for g in range(len(sizes))]
    return [indices[s:s + size] for s, size in zip(starts, sizes)]


def _build(rule: Rule | None, task: TaskSpec, splits: Splits) -> torch.nn.Module:
    """A member's model with its rule installed, drawn exactly as ``evaluate`` draws it from ``task.seed``."""
    devices = [torch.device(task.device)] if task.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        # The CPU generator is the only one a batchable model draws from (torch.manual_seed would also seed CUDA
        # lazily, recording a stack trace, ~1 ms a member).
        torch.default_generator.manual_seed(task.seed)
        model = build_model(task.model, splits.input_shape, splits.num_classes).to(task.device)
        install_rule(model, rule, task.seed, splits.num_classes)
    return model


def _train_group(rules: list[Rule | None], members: list[Member], splits: Splits, settle: OnResult) -> None:
    """Train one group, calling ``settle(j, result)`` for its member j as soon as that result is final."""
    start = time.perf_counter()
    models, built, failed = [], [], {}
    for j, (rule, (_, task)) in enumerate(zip(rules, members)):
        try:
            models.append(_build(rule, task, splits))
            built.append(j)
        except Exception as exc:  # as in evaluate: a member that cannot be built is an error, not a crash
            failed[j] = EvalResult("error", device=task.device, message=error_message(exc))
    tasks = [members[j][1] for j in built]
    if len(built) == 1:
        # A batch of one runs other kernels (a batched product of one matrix is a plain one) and rounds differently;
        # a copy of the member keeps its result the same bits as in any larger batch, for a lone member's 2x cost.
        models.append(_build(rules[built[0]], tasks[0], splits))
        tasks = tasks * 2
    try:
        model = merge(models) if built else None
    except Unbatchable:
        for j, (text, task) in enumerate(members):
            settle(j, evaluate(text, task))
        return
    for j, result in failed.items():
        settle(j, result)
    if model is None:
        return
    setup = (time.perf_counter() - start) / len(members)

    def report(b: int, result: EvalResult) -> None:
        if b < len(built):   # not the copy
            settle(built[b], replace(result, wall_time=result.wall_time + setup))
    BatchTrainer(model, tasks, splits, report).run()
