"""The search's configuration: frozen dataclasses in small groups, layered defaults -> preset -> TOML -> flags.

Every user mistake becomes one ``ConfigError`` line that names the setting and the fix (STYLE §9); the defaults are
the embedded digits search, sized to finish 5,000 evaluations within 10 minutes on 2 cores (issue 5).
"""
from __future__ import annotations

import difflib
import importlib
import math
import re
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from evaluators.task import ModelSpec, TaskSpec

from gp_backprop.parallel import BACKENDS
from gp_backprop.tracking.store import DEFAULT_URI

__all__ = ["ConfigError", "SpaceConfig", "BudgetConfig", "FitnessConfig", "EvaluationConfig", "ParallelConfig",
           "TrackingConfig", "SearchConfig", "build", "evolve_hint", "load_toml", "parse_duration", "flatten",
           "search_identity"]


class ConfigError(ValueError):
    """A configuration value a user gave is wrong; the message is one line with the fix."""


@dataclass(frozen=True)
class SpaceConfig:
    """What is searched and how candidates are proposed (paper §3.2, reference §2)."""

    hard_threshold: bool = False        # add FTPROP-MB's functions (tanh, sech2, windows); on in preset ftprop-sign
    form: str = "paper"                 # random initial equations in the paper's f(u1(op1), u2(op2)) form
    init: str = "random"                # "random" (the paper) or "seeds:backprop,fa" (named seeds, then their mutants)
    population: int = 100               # N: size of the initial population and of the top-N pool. The paper's 1000
    #                                     suits 500 workers for days; 5,000 evaluations need a pool that turns over
    #                                     several times (50 rounds of N) so selection has time to act
    p_top: float = 0.7                  # p: parent from the top N with this probability, else from the rest (paper)
    k_weights: tuple[float, ...] = (1.0,)  # P(k = 1, 2, ...) mutations per child; the paper always used k = 1
    selection: str = "top_n"            # top_n (the paper) | tournament (DEAP selTournament)
    tournament_size: int = 7            # for selection = tournament; DEAP examples' usual 3-7
    reference: str = "backprop"         # seed trained first in every search: the baseline line in plot and summary


@dataclass(frozen=True)
class BudgetConfig:
    """When the search stops (the first of the two)."""

    max_evals: int = 1000               # candidates, cache hits not counted (each is 3-5 trainings: [fitness])
    time_budget: float = 0.0            # seconds of wall time over all resumes; 0 = no limit ("10m", "2h" accepted)


@dataclass(frozen=True)
class FitnessConfig:
    """How a candidate's fitness is measured so that neither its step size nor one lucky seed decides it (README,
    "The protocol"). The grid and the seeds multiply trainings per candidate; the default budget accounts for it."""

    tune: bool = True                   # tune the reference's lr on validation before the search (--no-tune: off)
    tune_points: int = 8                # grid points around task.lr, tune_factor apart (0.0125 ... 1.6 for lr 0.1)
    tune_factor: float = 2.0
    tune_seeds: int = 3                 # seeds per grid point; the mean decides
    lr_grid: tuple[float, ...] = (0.5, 1.0, 2.0)  # a candidate's first lr bracket: the tuned lr times these
    # ... then one lr_step beyond its lowest or highest lr while the best is there (or all diverged), up to
    # lr_step ** lr_reach either side of the tuned lr: wide enough for a rule's own best lr whatever its scale
    # (g/||g||_F's is 4x below backprop's; README, "The protocol"); 0 = the bracket alone. Best val wins.
    lr_step: float = 2.0
    lr_reach: int = 6
    lr_tolerance: float = 0.01          # an edge within this of the best walks on too: one training's seed noise
    lr_inherit: bool = False            # a mutant's bracket starts around the lr its parent chose, not the tuned lr
    extra_seeds: int = 2                # a candidate whose first score enters the top N trains on this many more
    # Multi-fidelity screening: at each of these epochs (before the last) a grid training stops (status "hurdle")
    # when its validation accuracy is screen_margin or more below every top-N entry's there; off until the top N is
    # full. The
    # defaults come from a 5,000-candidate search (benchmarks/screening.py, benchmarks/README.md). () = off.
    screen_epochs: tuple[int, ...] = (1, 2, 5, 10)
    screen_margin: float = 0.05


@dataclass(frozen=True)
class EvaluationConfig:
    """How one candidate is trained (the task itself is ``SearchConfig.task``)."""

    timeout: float = 60.0               # seconds per candidate, then status "timeout"; 0 = none. Far above one
    #                                     training of the default task (benchmarks/README): only a stuck one gets it
    function: str = "evaluators:evaluate"  # module:function(text, task) -> EvalResult, run in the workers


@dataclass(frozen=True)
class ParallelConfig:
    """Where candidates are trained."""

    backend: str = "loky"               # loky (local processes, via joblib) | dask (distributed)
    workers: int = 0                    # loky processes / LocalCluster workers; 0 = one per CPU core
    scheduler: str = ""                 # dask scheduler address tcp://HOST:PORT; empty = start a LocalCluster
    chunk: int = 12                     # trainings a worker takes at once, trained as one batched network where the
    #                                     function allows (evaluators.evaluate_many); 1 = one at a time


@dataclass(frozen=True)
class TrackingConfig:
    """What is recorded, and where."""

    enabled: bool = True
    uri: str = DEFAULT_URI
    artifacts: str = "mlruns/artifacts"      # artifact root for a new experiment on a local sqlite store
    hall_of_fame: int = 20              # K equations in hall_of_fame.csv and the summary (the paper reran its top 100)
    experiment: str = ""                # MLflow experiment; "" = the search's name (a campaign sets its own)
    parent_run: str = ""                # a run of that experiment to nest the search's parent run under (a campaign's)
    checkpoint_dir: str = "mlruns/searches"  # <dir>/<name>/checkpoint.json and journal.jsonl
    checkpoint_every: float = 5.0       # seconds between snapshots; every result is also journaled at once
    artifacts_every: float = 600.0      # seconds between hall-of-fame/plot uploads during long searches
    metrics_every: float = 2.0          # seconds between the parent run's progress metrics


# The default search task: MNIST-1D (generated locally), MLP 100-100, 20 epochs. Chosen over digits by measurement
# (benchmarks/task_choice.py; README "The default task"): one validation example is 0.1 points (digits: 0.28), and
# tuned backprop is far from the ceiling. lr 0.4 is only the centre of the reference's tuning grid.
# The search's early stop (paper §3.2: "early stopping on the validation set cuts the cost of bad equations"; its
# rule is not stated). Ours: a candidate whose validation accuracy after epoch 4 of 20 is at most 0.2 (twice chance
# on 10 classes) stops there, with status "hurdle" and that accuracy as its fitness; backprop is well above it there
# (benchmarks/README.md has the figures). Re-tests of finalists (reevaluate, funnel) train in full.
# Trainings whose loss blows up (a step above 4x where it started) or whose epoch ends above where it started (a
# mean over 1.05x) stop at once as diverged: an lr far too large costs a few steps, and tells the lr
# search which way to go. Tuned backprop's steps stay far below both (benchmarks/README.md, "Controls").
SEARCH_TASK = TaskSpec(dataset="mnist1d", lr=0.4, model=ModelSpec(widths=(100, 100)), hurdle_epoch=4, hurdle_acc=0.2,
                       diverge_step=4.0, diverge_epoch=1.05)


@dataclass(frozen=True)
class SearchConfig:
    """One search. ``seed`` drives the controller's proposals; every candidate trains with ``task.seed``."""

    name: str = "mnist1d"               # MLflow experiment and checkpoint folder
    seed: int = 0
    preset: str = "default"
    space: SpaceConfig = field(default_factory=SpaceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    task: TaskSpec = field(default_factory=lambda: SEARCH_TASK)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.tracking.checkpoint_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DURATIONS = {"budget.time_budget", "evaluation.timeout", "tracking.checkpoint_every", "tracking.artifacts_every",
             "tracking.metrics_every"}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``90``, ``90s``, ``10m``, ``2h``."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(value)
        return float(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", str(value))
    if not m:
        raise ValueError(value)
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def did_you_mean(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(sorted(options))}"


def _coerce(value: Any, hint: Any, where: str, src: str) -> Any:
    """``value`` converted to the annotated type, or a one-line error naming ``where`` and the expected type."""
    if where in DURATIONS:
        try:
            return parse_duration(value)
        except ValueError:
            raise ConfigError(f"{src}: {where} = {value!r} is not a duration; use seconds or e.g. '90s', '10m', '2h'")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):   # str | None
        if value is None or value in ("", "None"):  # "None": as ``flatten`` writes it into MLflow params
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        seq = value if isinstance(value, (list, tuple)) else \
            [v for v in value.split(",") if v.strip()] if isinstance(value, str) else None  # "": ()
        if seq is None:
            raise ConfigError(f"{src}: {where} = {value!r} must be a list, e.g. {where.split('.')[-1]} = [1, 2]")
        return tuple(_coerce(v.strip() if isinstance(v, str) else v, item, where, src) for v in seq)
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool), str: isinstance(value, str)}
    if hint in ok and not ok[hint] and isinstance(value, str) and hint is not str:
        try:  # CLI strings: "3", "0.5", "true"
            value = {"true": True, "false": False}[value.lower()] if hint is bool else hint(value)
            ok[hint] = True
        except (KeyError, ValueError):
            pass
    if hint in ok and not ok[hint]:
        raise ConfigError(f"{src}: {where} = {value!r} must be {hint.__name__}")
    if hint is float and not math.isfinite(value):  # TOML and --set read inf and nan as numbers
        raise ConfigError(f"{src}: {where} = {value!r} must be a finite number")
    return float(value) if hint is float else value


def merge(base: dict[str, Any], overrides: dict[str, Any], src: str, prefix: str = "",
          schema_cls: type = SearchConfig) -> dict[str, Any]:
    """``base`` (a nested dict of a dataclass) with ``overrides`` applied; unknown keys and wrong types raise."""
    out = dict(base)
    hints = typing.get_type_hints(schema_cls)
    for k, v in overrides.items():
        where = f"{prefix}{k}"
        if k not in hints:
            raise ConfigError(f"{src}: unknown key {where!r}{did_you_mean(k, hints)}")
        hint = hints[k]
        if is_dataclass(hint):
            if not isinstance(v, dict):
                raise ConfigError(f"{src}: {where} is a section; write [{where}] with keys under it")
            out[k] = merge(out[k], v, src, f"{where}.", hint)
        else:
            out[k] = _coerce(v, hint, where, src)
    return out


def dotted(pairs: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (CLI flags and ``--set`` name settings by their dotted path)."""
    out: dict[str, Any] = {}
    for path, v in pairs.items():
        *parents, last = path.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {path}: {p!r} is a value, not a section")
        node[last] = v
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file; give the path of a TOML file")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc}); see README 'Searching' for the layout")


def build(layers: list[tuple[str, dict[str, Any]]], base: dict[str, Any] | None = None) -> SearchConfig:
    """Apply each (source, nested overrides) layer over the defaults, or over ``base`` (a checkpoint's config),
    then validate."""
    d = SearchConfig().to_dict()
    for src, layer in ([("checkpoint", base)] if base is not None else []) + layers:
        d = merge(d, layer, src)
    cfg = SearchConfig(
        name=d["name"], seed=d["seed"], preset=d["preset"],
        space=SpaceConfig(**d["space"]), budget=BudgetConfig(**d["budget"]), task=TaskSpec.from_dict(d["task"]),
        fitness=FitnessConfig(**{**d["fitness"], "lr_grid": tuple(d["fitness"]["lr_grid"])}),
        evaluation=EvaluationConfig(**d["evaluation"]), parallel=ParallelConfig(**d["parallel"]),
        tracking=TrackingConfig(**d["tracking"]))
    validate(cfg)
    return cfg


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def init_seeds(init: str) -> list[str]:
    """Seed names of ``space.init`` ("random" -> [])."""
    return [] if init == "random" else [s.strip() for s in init.split(":", 1)[1].split(",") if s.strip()]


def validate(cfg: SearchConfig) -> None:
    """Range and name checks that types cannot express; each failure says which setting and what to write."""
    from primitives import SEEDS, default_pset, parse
    from primitives.generate import FORMS
    from primitives.seeds import HARD_THRESHOLD_SEEDS

    s, b, e, p, t = cfg.space, cfg.budget, cfg.evaluation, cfg.parallel, cfg.tracking
    _need(bool(re.fullmatch(r"[A-Za-z0-9._-]+", cfg.name)) and cfg.name not in (".", ".."),
          f"name {cfg.name!r} may hold only letters, digits, '.', '_' and '-', and not be '.' or '..' (it names a "
          "folder); "
          "e.g. --name digits-2")
    _need(cfg.seed >= 0, f"seed = {cfg.seed} must be >= 0")
    _need(s.population >= 1, f"space.population = {s.population} must be >= 1 (the paper used 1000)")
    _need(0.0 <= s.p_top <= 1.0, f"space.p_top = {s.p_top} must be a probability in [0, 1] (the paper used 0.7)")
    _need(bool(s.k_weights) and all(w >= 0 and math.isfinite(w) for w in s.k_weights) and sum(s.k_weights) > 0,
          f"space.k_weights = {list(s.k_weights)} must be non-negative weights of k = 1, 2, ... with a positive sum,"
          " e.g. [1.0] (always one mutation, the paper) or [0.7, 0.3]")
    _need(s.tournament_size >= 1, f"space.tournament_size = {s.tournament_size} must be >= 1")
    _need(s.form in FORMS, f"space.form = {s.form!r} is unknown{did_you_mean(s.form, FORMS)}")
    _need(s.init == "random" or s.init.startswith("seeds:"),
          f"space.init = {s.init!r} must be 'random' or 'seeds:NAME,NAME,...', e.g. --init seeds:backprop,fa")
    names = init_seeds(s.init) + [s.reference]
    _need(s.init == "random" or bool(init_seeds(s.init)),
          "space.init = 'seeds:' names no seed; e.g. --init seeds:backprop,fa")
    for name in names:
        where = "space.reference" if name == s.reference else "space.init"
        _need(name in SEEDS, f"{where}: unknown seed {name!r}{did_you_mean(name, SEEDS)}")
        _need(s.hard_threshold or name not in HARD_THRESHOLD_SEEDS,
              f"{where}: seed {name!r} needs the hard-threshold functions; set space.hard_threshold = true"
              " (or use --preset ftprop-sign)")
        parse(SEEDS[name], default_pset(s.hard_threshold))
    f = cfg.fitness
    _need(f.tune_points >= 1 and f.tune_seeds >= 1 and f.extra_seeds >= 0,
          f"fitness: tune_points ({f.tune_points}) and tune_seeds ({f.tune_seeds}) must be >= 1, extra_seeds "
          f"({f.extra_seeds}) >= 0")
    _need(math.isfinite(f.tune_factor) and f.tune_factor > 1.0,
          f"fitness.tune_factor = {f.tune_factor} must be a finite number > 1 (2 doubles the lr per grid point)")
    _need(bool(f.lr_grid) and all(math.isfinite(x) and x > 0 for x in f.lr_grid),
          f"fitness.lr_grid = {list(f.lr_grid)} must be positive finite factors of the tuned lr, e.g. [0.5, 1, 2]")
    _need(math.isfinite(f.lr_tolerance) and f.lr_tolerance >= 0,
          f"fitness.lr_tolerance = {f.lr_tolerance} must be a finite accuracy >= 0, e.g. 0.01")
    _need(math.isfinite(f.lr_step) and f.lr_step > 1 and f.lr_reach >= 0,
          f"fitness.lr_step = {f.lr_step} must be a finite factor > 1 and fitness.lr_reach = {f.lr_reach} a count "
          ">= 0 (2 and 6 walk up to 64x either side of the tuned lr; lr_reach = 0 keeps the bracket alone)")
    _need(all(isinstance(x, int) and x >= 1 for x in f.screen_epochs),
          f"fitness.screen_epochs = {list(f.screen_epochs)} must be epochs >= 1 (those at or past task.epochs are "
          "not used), e.g. [2, 5, 10], or [] for no screening")
    _need(math.isfinite(f.screen_margin) and f.screen_margin >= 0,
          f"fitness.screen_margin = {f.screen_margin} must be a finite accuracy >= 0, e.g. 0.05")
    _need(b.max_evals >= 1, f"budget.max_evals = {b.max_evals} must be >= 1")
    _need(b.time_budget >= 0, f"budget.time_budget = {b.time_budget} must be >= 0 (0 = no limit)")
    _need(e.timeout >= 0, f"evaluation.timeout = {e.timeout} must be >= 0 seconds (0 = none)")
    _check_function(e.function)
    _check_task(cfg.task)
    _need(p.backend in BACKENDS,
          f"parallel.backend = {p.backend!r} is unknown{did_you_mean(p.backend, BACKENDS)}")
    _need(p.workers >= 0, f"parallel.workers = {p.workers} must be >= 0 (0 = one per CPU core)")
    _need(p.chunk >= 1, f"parallel.chunk = {p.chunk} must be >= 1 trainings per worker task (1 = one at a time)")
    _need(not p.scheduler or p.backend == "dask",
          f"parallel.scheduler = {p.scheduler!r} needs --backend dask (loky runs on this machine only)")
    _need(not p.scheduler or bool(re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+", p.scheduler)),
          f"parallel.scheduler = {p.scheduler!r} is not a Dask address; e.g. --scheduler tcp://10.0.0.5:8786")
    _need(bool(t.uri), "tracking.uri is empty; e.g. sqlite:///mlruns/mlflow.db or http://127.0.0.1:5000")
    _need("://" in t.uri and not t.uri.startswith("file:"),
          f"tracking.uri = {t.uri!r} is MLflow's file store, which MLflow refuses; use sqlite:///mlruns/mlflow.db")
    _need(t.hall_of_fame >= 1, f"tracking.hall_of_fame = {t.hall_of_fame} must be >= 1")
    for k in ("checkpoint_every", "artifacts_every", "metrics_every"):
        _need(getattr(t, k) >= 0, f"tracking.{k} = {getattr(t, k)} must be >= 0 seconds")


def _check_function(spec: str) -> None:
    mod, _, attr = spec.partition(":")
    _need(bool(mod and attr), f"evaluation.function = {spec!r} must be 'module:function', e.g. 'evaluators:evaluate'")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"evaluation.function = {spec!r} cannot be imported ({exc}); check the module and name")
    _need(callable(fn), f"evaluation.function = {spec!r} is not callable")


def _check_task(task: TaskSpec) -> None:
    from evaluators import DATASETS, DataError, TaskError, check_task

    _need(":" in task.dataset or task.dataset in DATASETS,  # "package.module:function" is a plug-in
          f"task.dataset = {task.dataset!r} is unknown{did_you_mean(task.dataset, DATASETS)}")
    try:
        check_task(task)  # the evaluators' own rules (dataset plug-in, model, optimizer, schedule, device)
    except DataError as exc:
        raise ConfigError(evolve_hint(str(exc))) from None
    except TaskError as exc:
        raise ConfigError(evolve_hint(f"[task]: {exc}")) from None


# The evaluators' messages name the flags of `gp_backprop.evaluate`, which are settings under `evolve`.
_EVOLVE_FLAGS = {"the --data-root option": "--set task.data_root=DIR", "--data-root": "--set task.data_root=DIR",
                 "--device cpu": "--set task.device=cpu", "--model ": "--set task.model.arch="}


def evolve_hint(message: str) -> str:
    """``message`` with the evaluate CLI's flags replaced by the ``evolve`` settings that do the same."""
    for flag, setting in _EVOLVE_FLAGS.items():
        message = message.replace(flag, setting)
    return message


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys to strings, for MLflow params and error messages."""
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return out


def search_identity(cfg: SearchConfig) -> dict[str, str]:
    """The settings a resumed search must keep: they decide which candidates are proposed and how they train."""
    d = cfg.to_dict()
    return flatten({"seed": d["seed"], "space": d["space"], "task": d["task"], "fitness": d["fitness"],
                    "evaluation": {"function": d["evaluation"]["function"]}})
