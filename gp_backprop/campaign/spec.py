"""A campaign file (TOML) read into a frozen plan before anything runs: its searches (one ``SearchConfig`` per search
seed, built as ``evolve`` builds one), the funnel of their pooled top rules, the transfer setups and the output
folder. Every mistake is one ``ConfigError`` line naming the key and the fix."""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evaluators import DataError, TaskError, TaskSpec, check_task

from gp_backprop.config import ConfigError, SearchConfig, build, did_you_mean, flatten, merge, parse_duration
from gp_backprop.funnel.setups import SETUP_NAMES, SetupError, input_info, setups
from gp_backprop.presets import PRESETS

__all__ = ["Campaign", "FunnelPlan", "SearchPlan", "Transfer", "load"]

TOP_KEYS = ("name", "out", "description", "search", "funnel", "transfer")
SECTIONS = ("space", "budget", "task", "fitness", "evaluation", "parallel", "tracking")   # evolve's, under [search]
LABEL = re.compile(r"[A-Za-z0-9._@+-]+")      # names files (curves_<label>.png) and MLflow runs
CHANGEABLE = ("description", "out")            # what a started campaign may still change in its file


@dataclass(frozen=True)
class SearchPlan:
    """The searches: one per seed, each a normal search of the preset and settings under ``[search]``."""

    preset: str = "default"
    seeds: tuple[int, ...] = (1, 2, 3)    # the controllers' seeds; every candidate trains with task.seed
    max_evals: int = 0                    # candidates per search; 0 = the preset's or [search.budget]'s


@dataclass(frozen=True)
class FunnelPlan:
    """The re-test of the pooled top rules against the controls, as ``reevaluate`` runs it."""

    top: int = 10                         # pooled distinct functions
    setups: tuple[str, ...] = ("A1", "A2", "A3")
    seeds: int = 5                        # fresh seeds per row and setup
    controls: tuple[str, ...] = ()        # seed names; () = the search's standard controls (funnel.CONTROLS)
    tune: bool = True                     # each row at its own tuned lr
    tune_points: int = 0                  # lr grid points; 0 = the search's fitness.tune_points
    timeout: float = 3600.0               # seconds per training
    workers: int = 0                      # worker processes for the re-tests; 0 = one per CPU core. Their results do
    #                                       not depend on it (a fixed list of trainings), unlike a search's proposals


@dataclass(frozen=True)
class Transfer:
    """A setup the search never saw: the search's task with some settings changed."""

    label: str
    description: str
    task: TaskSpec


@dataclass(frozen=True)
class Campaign:
    name: str
    out: Path
    description: str
    search: SearchPlan
    funnel: FunnelPlan
    transfer: tuple[Transfer, ...]
    searches: tuple[SearchConfig, ...]    # one per search seed, in seed order
    path: str                             # the campaign file, as given
    plan: dict[str, str]                  # the file's settings, flattened: fixed once the campaign has started

    @property
    def experiment(self) -> str:
        """The MLflow experiment of the campaign's run, its searches and its funnels."""
        return f"campaign-{self.name}"

    @property
    def folder(self) -> Path:
        """Where the campaign keeps its state: ``campaigns/<name>`` beside the searches' checkpoints."""
        return Path(self.searches[0].tracking.checkpoint_dir).parent / "campaigns" / self.name


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _read(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such campaign file; give the path of a TOML file such as "
                          "campaigns/mnist1d.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); see README 'Campaigns' for the layout") from None


def _known(table: Any, keys: tuple[str, ...] | list[str], src: str, where: str) -> dict[str, Any]:
    """``table`` as a dict whose keys are all ``keys``, or a one-line error naming the first unknown one."""
    if not isinstance(table, dict):
        raise ConfigError(f"{src}: {where or 'the file'} must be a table; write [{where}] with keys under it")
    for k in table:
        _need(k in keys, f"{src}: unknown key {f'{where}.{k}' if where else k!r}{did_you_mean(k, keys)}")
    return table


def _section(cls: type, table: dict[str, Any], src: str, prefix: str) -> Any:
    """A frozen plan dataclass from ``table``, types checked by ``config.merge``."""
    d = merge(asdict(cls()), table, src, prefix, cls)
    return cls(**d)


def load(path: str | Path) -> Campaign:
    """The campaign in file ``path``, checked down to its searches' settings, setups and transfer tasks."""
    src = str(path)
    raw = _known(_read(path), TOP_KEYS, src, "")
    name = raw.get("name")
    _need(isinstance(name, str) and bool(re.fullmatch(r"[A-Za-z0-9._-]+", name)) and name not in (".", ".."),
          f"{src}: name = {name!r} must be letters, digits, '.', '_' or '-' (it names folders and runs), "
          "e.g. name = \"mnist1d\"")
    out = raw.get("out", f"results/{name}")
    _need(isinstance(out, str) and bool(out.strip()), f"{src}: out = {out!r} must be a folder, e.g. "
                                                      f"out = \"results/{name}\"")
    description = raw.get("description", "")
    _need(isinstance(description, str), f"{src}: description must be text")
    plan, searches = _searches(raw.get("search", {}), name, src)
    task = searches[0].task
    funnel_plan = _funnel(raw.get("funnel", {}), searches[0], src)
    transfer = _transfers(raw.get("transfer", []), task, funnel_plan, src)
    return Campaign(name, Path(out), description, plan, funnel_plan, transfer, searches, src, _flat(raw))


def _searches(table: Any, name: str, src: str) -> tuple[SearchPlan, tuple[SearchConfig, ...]]:
    plan_keys = tuple(f.name for f in dataclasses.fields(SearchPlan))
    for k in ("name", "seed"):
        _need(k not in (table if isinstance(table, dict) else {}),
              f"{src}: search.{k} is set by the campaign (searches are named <campaign>-s<seed>); list the "
              "controllers' seeds as search.seeds = [1, 2, 3]")
    table = _known(table, plan_keys + SECTIONS, src, "search")
    plan = _section(SearchPlan, {k: v for k, v in table.items() if k in plan_keys}, src, "search.")
    _need(plan.preset in PRESETS, f"{src}: search.preset = {plan.preset!r} is unknown"
                                  f"{did_you_mean(plan.preset, PRESETS)}")
    _need(bool(plan.seeds) and all(s >= 0 for s in plan.seeds) and len(set(plan.seeds)) == len(plan.seeds),
          f"{src}: search.seeds = {list(plan.seeds)} must be distinct seeds >= 0, e.g. [1, 2, 3]")
    _need(plan.max_evals >= 0, f"{src}: search.max_evals = {plan.max_evals} must be >= 1 candidates")
    settings = {k: v for k, v in table.items() if k in SECTIONS}
    budget = settings.get("budget", {})
    _need(not (plan.max_evals and isinstance(budget, dict) and "max_evals" in budget),
          f"{src}: search.max_evals and search.budget.max_evals both set the budget; keep one")
    tracking = settings.get("tracking", {})
    for k in ("experiment", "parent_run"):
        _need(not (isinstance(tracking, dict) and k in tracking),
              f"{src}: search.tracking.{k} is set by the campaign (its searches nest under its MLflow run); "
              "remove it")
    configs = []
    for seed in plan.seeds:
        own = {"name": f"{name}-s{seed}", "seed": seed, "tracking": {"experiment": f"campaign-{name}"}}
        if plan.max_evals:
            own["budget"] = {"max_evals": plan.max_evals}
        try:
            cfg = build([(f"preset {plan.preset}", {**PRESETS[plan.preset], "preset": plan.preset}),
                         (f"{src} [search]", settings), ("campaign", own)])
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith(src) else f"{src} [search]: {text}") from None
        _need(cfg.tracking.enabled, f"{src}: search.tracking.enabled = false, but a campaign records every run in "
                                    "MLflow; remove it")
        configs.append(cfg)
    return plan, tuple(configs)


def _funnel(table: Any, cfg: SearchConfig, src: str) -> FunnelPlan:
    table = dict(_known(table, tuple(f.name for f in dataclasses.fields(FunnelPlan)), src, "funnel"))
    if "timeout" in table:
        try:
            table["timeout"] = parse_duration(table["timeout"])
        except ValueError:
            raise ConfigError(f"{src}: funnel.timeout = {table['timeout']!r} is not a duration; use seconds or "
                              "e.g. '90s', '10m', '2h'") from None
    plan = _section(FunnelPlan, table, src, "funnel.")
    _need(plan.top >= 1, f"{src}: funnel.top = {plan.top} must be >= 1 (the pooled distinct functions to re-test)")
    _need(plan.seeds >= 2, f"{src}: funnel.seeds = {plan.seeds}: the paired tests need at least 2 fresh seeds; "
                           "e.g. funnel.seeds = 5")
    _need(plan.workers >= 0, f"{src}: funnel.workers = {plan.workers} must be >= 0 (0 = one per CPU core)")
    _need(plan.tune_points >= 0 and plan.timeout > 0,
          f"{src}: funnel.tune_points ({plan.tune_points}) must be >= 0 (0: the search's) and funnel.timeout "
          f"({plan.timeout}) > 0")
    _need(bool(plan.setups), f"{src}: funnel.setups is empty; e.g. funnel.setups = [\"A1\", \"A2\", \"A3\"]")
    for s in plan.setups:
        _need(s in SETUP_NAMES, f"{src}: funnel.setups: unknown setup {s!r}{did_you_mean(s, SETUP_NAMES)}")
    _controls(plan.controls, cfg, src)
    try:
        setups(cfg.task, plan.setups, [cfg.task.optimizer], *input_info(cfg.task))
    except (SetupError, DataError) as exc:   # the funnel's messages name reevaluate's flag
        raise ConfigError(f"{src}: funnel.setups: {str(exc).replace('--setups', 'funnel.setups')}") from None
    return plan


def _controls(names: tuple[str, ...], cfg: SearchConfig, src: str) -> None:
    from primitives import SEEDS, EquationError, default_pset, parse

    for n in names:
        _need(n in SEEDS, f"{src}: funnel.controls: unknown seed {n!r}{did_you_mean(n, SEEDS)}")
        try:
            parse(SEEDS[n], default_pset(cfg.space.hard_threshold))
        except EquationError:
            raise ConfigError(f"{src}: funnel.controls: seed {n!r} needs the hard-threshold functions, which this "
                              "search does not have (search.space.hard_threshold)") from None


def _transfers(items: Any, task: TaskSpec, plan: FunnelPlan, src: str) -> tuple[Transfer, ...]:
    _need(isinstance(items, list) and all(isinstance(t, dict) for t in items),
          f"{src}: transfer must be a list of tables: write each as [[transfer]] with label and [transfer.task]")
    out: list[Transfer] = []
    base = task.in_full()   # a re-test trains in full, as the funnel's setups do
    for i, item in enumerate(items):
        where = f"transfer[{i}]"
        _known(item, ("label", "description", "task"), src, where)
        label = item.get("label")
        _need(isinstance(label, str) and bool(LABEL.fullmatch(label)),
              f"{src}: {where}.label = {label!r} must be letters, digits or . _ @ + - (it names files), "
              "e.g. label = \"digits\"")
        _need(label not in plan.setups and label not in [t.label for t in out],
              f"{src}: {where}.label = {label!r} is taken; give each setup its own label")
        changes = item.get("task")
        _need(isinstance(changes, dict) and bool(changes),
              f"{src}: {where} needs a [transfer.task] table of the settings it changes, e.g. dataset = \"digits\"")
        spec = TaskSpec.from_dict(merge(base.to_dict(), changes, src, f"{where}.task.", TaskSpec))
        try:
            check_task(spec)
            input_info(spec)
        except (TaskError, DataError) as exc:
            raise ConfigError(f"{src}: {where} ({label}): {exc}") from None
        text = item.get("description") or "; ".join(f"{k} = {v}" for k, v in flatten(changes).items())
        _need(isinstance(text, str), f"{src}: {where}.description must be text")
        out.append(Transfer(label, text, spec))
    return tuple(out)


def _flat(raw: dict[str, Any]) -> dict[str, str]:
    """The file's settings as dotted keys (a transfer by its index), for the check that a started campaign keeps
    its plan."""
    d = dict(raw)
    if isinstance(d.get("transfer"), list):
        d["transfer"] = {str(i): t for i, t in enumerate(d["transfer"])}
    return {k: v for k, v in flatten(d).items() if k not in CHANGEABLE}
