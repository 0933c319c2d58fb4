"""The generalization funnel's setups (Backprop Evolution §4, Table 1): the search setting (A1), a ~10x larger model
(A2), 5x longer training with the paper's cosine schedule (A3), and for WRN searches the B1 setting (WRN 10-1, 100
epochs). Each is a ``TaskSpec`` derived from the task a search ran on."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from evaluators import ModelSpec, TaskSpec, build_model
from gp_backprop.config import ConfigError, dotted, flatten, merge

SETUP_NAMES = ("A1", "A2", "A3", "B1")
OPTIMIZERS = ("sgd", "momentum", "adam")
LABELS = {"sgd": "SGD", "momentum": "SGD+M", "adam": "Adam"}
MOMENTUM_LR_FACTOR = 0.1   # momentum 0.9 multiplies the effective step by 10: keep it equal to plain SGD's
FRESH_SEED_OFFSET = 1      # re-test seeds are task.seed + 1 ... + K: never the seed the search trained with


class SetupError(ValueError):
    """A setup that cannot be derived from this search's task; the message says which ones can."""


@dataclass(frozen=True)
class Setup:
    name: str            # e.g. "A2"
    optimizer: str       # "sgd" or "momentum"
    description: str
    task: TaskSpec       # with the search's seed; jobs replace it with fresh seeds

    @property
    def label(self) -> str:
        return f"{self.name} {LABELS.get(self.optimizer, self.optimizer)}"


def transfer(setups_: typing.Sequence[Setup], datasets: typing.Sequence[str]) -> list[Setup]:
    """The A1 setups again on each of ``datasets`` (built-in names or plug-ins): does a rule carry over to a task the
    search never saw? Named ``A1@<dataset>``."""
    out = []
    for d in datasets:
        for s in setups_:
            if s.name == "A1":
                out.append(Setup(f"A1@{d}", s.optimizer, f"the search setting on {d}", s.task.with_(dataset=d)))
    if datasets and not out:
        raise SetupError("--tasks re-runs the A1 setup on other datasets; add A1 to --setups")
    return out


def _parameters(spec: ModelSpec, shape: tuple[int, ...], classes: int) -> int:
    return sum(p.numel() for p in build_model(spec, shape, classes).parameters())


def _larger(spec: ModelSpec, shape: tuple[int, ...], classes: int) -> tuple[ModelSpec, str]:
    """A model with about 10x the parameters: the paper's WRN 16-2 -> 28-10, or an MLP with wider layers."""
    if spec.arch == "wrn":
        return dataclasses.replace(spec, depth=28, width=10), "WRN 28-10 (the paper's A2)"
    if spec.arch != "mlp":
        raise SetupError(f"A2 (a 10x larger model) is defined for mlp and wrn searches, not {spec.arch!r}; "
                         f"use --setups A1,A3")
    base = _parameters(spec, shape, classes)
    best = min((abs(_parameters(dataclasses.replace(spec, widths=tuple(round(w * m) for w in spec.widths)), shape,
                                classes) / base - 10), m) for m in (x / 4 for x in range(4, 33)))[1]
    widths = tuple(round(w * best) for w in spec.widths)
    bigger = dataclasses.replace(spec, widths=widths)
    ratio = _parameters(bigger, shape, classes) / base
    return bigger, f"MLP widths {','.join(map(str, widths))} ({ratio:.1f}x the parameters)"


def setups(task: TaskSpec, names: typing.Sequence[str], optimizers: typing.Sequence[str],
           input_shape: tuple[int, ...], classes: int) -> list[Setup]:
    """The requested setups for a search that ran on ``task``, one per (setup, optimizer)."""
    out = []
    for name in names:
        if name not in SETUP_NAMES:
            raise SetupError(f"unknown setup {name!r}; valid: {', '.join(SETUP_NAMES)}")
        if name == "A1":
            base, text = task, f"the search setting ({task.model.arch}, {task.epochs} epochs)"
        elif name == "A2":
            model, text = _larger(task.model, input_shape, classes)
            base, text = dataclasses.replace(task, model=model), f"{text}, {task.epochs} epochs"
        elif name == "A3":
            base = dataclasses.replace(task, epochs=5 * task.epochs, schedule="cosine")
            text = f"{5 * task.epochs} epochs (5x), cosine decay after 10% warm-up"
        else:
            if task.model.arch != "wrn":
                raise SetupError("B1 (WRN 10-1, 100 epochs) is for WRN searches; use --setups A1,A2,A3")
            base = dataclasses.replace(task, model=dataclasses.replace(task.model, depth=10, width=1), epochs=100,
                                       schedule="cosine")
            text = "WRN 10-1, 100 epochs, cosine decay after 10% warm-up (the paper's B1)"
        for opt in optimizers:
            if opt not in OPTIMIZERS:
                raise SetupError(f"unknown optimizer {opt!r}; valid: {', '.join(OPTIMIZERS)}")
            if (opt == "adam") != (task.optimizer == "adam"):   # no lr maps SGD's step onto Adam's
                raise SetupError(f"optimizer {opt!r} cannot re-test a search that used {task.optimizer!r}: sgd and "
                                 "momentum re-test SGD searches, adam re-tests Adam searches (FTPROP)")
            factor = {("sgd", "momentum"): MOMENTUM_LR_FACTOR, ("momentum", "sgd"): 1 / MOMENTUM_LR_FACTOR}
            lr = round(base.lr * factor.get((task.optimizer, opt), 1.0), 12)
            out.append(Setup(name, opt, text, dataclasses.replace(base, optimizer=opt, lr=lr).in_full()))
    return out


def fresh_seeds(task: TaskSpec, k: int) -> list[int]:
    return [task.seed + FRESH_SEED_OFFSET + i for i in range(k)]


def task_from_params(params: dict[str, str], prefix: str = "task.") -> TaskSpec:
    """Rebuild the ``TaskSpec`` a search logged as flattened MLflow params (``task.lr``, ``task.model.widths``), each
    value read as the same text in ``--set`` would be (``config.merge``). Params of fields this version lacks are
    ignored, and fields absent from the params keep their defaults."""
    known = set(flatten(TaskSpec().to_dict()))
    logged = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix) and k[len(prefix):] in known}
    try:
        return TaskSpec.from_dict(merge(TaskSpec().to_dict(), dotted(logged), "MLflow params", prefix, TaskSpec))
    except ConfigError as exc:
        raise SetupError(f"the search's task cannot be rebuilt: {exc}") from None


def input_info(task: TaskSpec) -> tuple[tuple[int, ...], int]:
    """Per-sample input shape and class count of the task's dataset (loads it once, on the CPU)."""
    from evaluators import load
    splits = load(task.dataset, seed=task.split_seed, root=task.data_root)
    return splits.input_shape, splits.num_classes

