"""What to train and what came out: the plain, picklable ``TaskSpec`` (with its ``ModelSpec``) and ``EvalResult``.

These are the only objects that cross process boundaries, together with equation text.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

STATUSES = ("ok", "diverged", "hurdle", "error", "timeout", "crashed")
OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class ModelSpec:
    """One spec for every model. ``arch`` picks the builder; the other fields are read by the builders that use
    them (``widths``: MLP hidden widths; ``depth``/``width``: WRN-depth-width)."""

    arch: str = "mlp"                       # mlp | convnet | wrn
    widths: tuple[int, ...] = (64, 64)      # two searchable hidden layers: the paper's rules act between layers
    activation: str = "relu"                # relu tanh sigmoid sat_relu sign qrelu, sign_<rule>, qrelu_<rule> (FTPROP)
    depth: int = 16                         # WRN depth (16, 28, 10 in the paper)
    width: int = 2                          # WRN widening factor k


@dataclass(frozen=True)
class TaskSpec:
    """A training task: data, model, optimiser, budget and seed. Defaults are the embedded digits search setting."""

    dataset: str = "digits"                 # digits | mnist1d | synthetic | cifar10 | "package.module:function"
    data_root: str | None = None            # folder holding cifar-10-batches-py/
    split_seed: int = 0                     # fixes train/val/test; the same for every candidate of a search
    model: ModelSpec = field(default_factory=ModelSpec)
    optimizer: str = "sgd"                  # sgd | momentum (SGD, momentum 0.9) | adam (FTPROP baselines)
    lr: float = 0.1                         # plain SGD; what backprop reaches with it on digits: benchmarks/README
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 20
    schedule: str = "constant"              # constant | cosine (10% linear warm-up, then cosine; runs > 50 epochs) | step
    lr_decay_epochs: tuple[int, ...] = ()   # for "step": multiply lr by lr_decay before each listed epoch (1-based)
    lr_decay: float = 0.1
    seed: int = 0                           # weights, batch order, feedback matrices and noise
    device: str = "cpu"
    hurdle_epoch: int = 0                   # 0 = off; else stop with status "hurdle" if val acc <= hurdle_acc here
    hurdle_acc: float = -1.0                # -1 = chance level plus 1.5 points
    hurdles: tuple[tuple[int, float], ...] = ()  # more (epoch, acc) early stops, as hurdle_epoch/hurdle_acc: the
    #                                       search's screening sets them per candidate (multi-fidelity)
    max_train_batches: int = 0              # 0 = all; >0 caps batches per epoch (smoke tests on big data)
    diverge_step: float = 0.0               # 0 = off; else a step's training loss above this times where the loss
    #                                       started (the first step's, or chance's ln C if higher) stops the run as
    #                                       "diverged" at once (a blow-up)
    diverge_epoch: float = 0.0              # 0 = off; else an epoch's mean training loss above this times that start
    #                                       stops it as "diverged" after the epoch (training made it worse)

    def with_(self, **changes: Any) -> "TaskSpec":
        """A copy with changes; ``model_*`` keys change the model spec (``model_arch="wrn"``)."""
        model = {k[6:]: changes.pop(k) for k in list(changes) if k.startswith("model_")}
        spec = replace(self, **changes)
        return replace(spec, model=replace(spec.model, **model)) if model else spec

    def in_full(self) -> "TaskSpec":
        """The same task trained to its last epoch: no hurdles and no divergence factors, so only a non-finite loss
        ends it early. A search's early stops save it time on bad candidates; a re-test reports full trainings."""
        return replace(self, hurdle_epoch=0, hurdles=(), diverge_step=0.0, diverge_epoch=0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        data = dict(data)
        model = ModelSpec(**{k: tuple(v) if k == "widths" else v for k, v in data.pop("model", {}).items()})
        tuples = {f.name for f in fields(cls) if f.name == "lr_decay_epochs"}
        if "hurdles" in data:
            data["hurdles"] = tuple((int(e), float(a)) for e, a in data["hurdles"])
        return cls(model=model, **{k: tuple(v) if k in tuples else v for k, v in data.items()})


@dataclass(frozen=True)
class EvalResult:
    """The outcome of training one equation on one task. Fitness is ``val_acc`` for status ok or hurdle (a hurdle
    run keeps the accuracy it stopped at), else 0.0."""

    status: str                             # one of STATUSES
    val_acc: float = 0.0                    # final validation accuracy (the fitness)
    test_acc: float = 0.0                   # final test accuracy, reported separately
    val_curve: tuple[float, ...] = ()       # validation accuracy after each epoch
    loss_curve: tuple[float, ...] = ()      # mean training loss of each epoch
    steps: int = 0
    wall_time: float = 0.0                  # seconds inside evaluate
    device: str = "cpu"
    message: str = ""                       # why, for every status but ok
    val_loss: float = 0.0                   # final mean validation cross-entropy (tie-breaks); 0.0 if diverged

    @property
    def fitness(self) -> float:
        return self.val_acc if self.status in ("ok", "hurdle") else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalResult":
        data = dict(data)
        for k in ("val_curve", "loss_curve"):
            data[k] = tuple(data.get(k, ()))
        return cls(**data)
