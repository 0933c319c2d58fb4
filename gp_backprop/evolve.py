"""``python -m gp_backprop.evolve``: the Backprop Evolution search (Alber et al. 2018, §3) from the command line.

Settings come from defaults, then ``--preset``, then ``--config`` (TOML), then flags. A user mistake prints one line
on stderr and exits with code 2, before anything is written (STYLE §9).
"""
from __future__ import annotations

import argparse
import difflib
import sys
import tomllib
from typing import Any, NoReturn

from evaluators.data import DataError, load

from gp_backprop.cli import OneLineParser, check_workers, fail, interrupted_code, stop_on_sigterm
from gp_backprop.config import ConfigError, SearchConfig, build, dotted, evolve_hint, flatten, load_toml
from gp_backprop.parallel import BackendError
from gp_backprop.presets import PRESETS
from gp_backprop.search import CheckpointError, RunFolder, print_summary, run_search
from gp_backprop.tracking import DEFAULT_URI, TrackingError

PROG = "evolve"

# flag -> dotted setting; every setting is also reachable with --set KEY=VALUE.
FLAGS = {
    "name": "name", "seed": "seed", "max_evals": "budget.max_evals", "time_budget": "budget.time_budget",
    "workers": "parallel.workers", "backend": "parallel.backend", "scheduler": "parallel.scheduler",
    "timeout": "evaluation.timeout", "init": "space.init", "population": "space.population",
    "selection": "space.selection", "dataset": "task.dataset", "epochs": "task.epochs",
    "tracking_uri": "tracking.uri",
}


def _fail(message: str) -> NoReturn:
    fail(PROG, message)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m gp_backprop.evolve", allow_abbrev=False,
                description="Search for backward equations that train networks better than backprop "
                            "(Backprop Evolution). With no flags: the MNIST-1D search, 1,000 candidates.")
    p.add_argument("--config", metavar="FILE", help="TOML file with [space], [budget], [task], ... sections")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named search (default: default)")
    p.add_argument("--name", help="MLflow experiment and checkpoint folder (default: mnist1d)")
    p.add_argument("--seed", type=int, help="controller seed; candidates always train with task.seed")
    p.add_argument("--max-evals", type=int, help="candidates before the search stops (default 1000)")
    p.add_argument("--time-budget", metavar="DURATION", help="stop proposing after this long: 600, 10m, 2h")
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU core)")
    p.add_argument("--force", action="store_true", help="allow more than 4 workers per CPU core")
    p.add_argument("--backend", help="loky (this machine) or dask")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, tcp://HOST:PORT (default: a LocalCluster)")
    p.add_argument("--timeout", metavar="DURATION", help="per-candidate wall-clock limit (default 60s)")
    p.add_argument("--init", metavar="SPEC", help="random, or seeds:backprop,fa,... (seeds and their mutants)")
    p.add_argument("--population", type=int, help="N: initial population and top-N pool (default 100)")
    p.add_argument("--selection", help="top_n (the paper) or tournament")
    p.add_argument("--dataset", help="digits, mnist1d, synthetic, cifar10, or a plug-in package.module:function")
    p.add_argument("--epochs", type=int, help="training epochs per candidate")
    p.add_argument("--tracking-uri", metavar="URI", help=f"MLflow store (default {DEFAULT_URI})")
    p.add_argument("--no-tracking", action="store_true", help="record nothing in MLflow (checkpoint only)")
    p.add_argument("--no-tune", action="store_true", help="keep task.lr: do not tune the reference's lr first")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting by its dotted name, TOML value syntax: --set task.model.widths=[32,32]")
    p.add_argument("--resume", action="store_true", help="continue the search --name from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again, replacing an unfinished checkpoint")
    p.add_argument("--repair", action="store_true", help="with --resume: cut a corrupt journal before its first bad "
                                                         "line (the results after it are trained again)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--show-config", action="store_true", help="print the resolved settings and exit")
    return p


def _value(text: str) -> Any:
    """A --set value in TOML syntax (numbers, true/false, [lists], "strings"); anything else is a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def resolve(args: argparse.Namespace) -> SearchConfig:
    """The configuration the arguments describe (on --resume: the checkpoint's, with the arguments over it)."""
    flags = {FLAGS[k]: v for k, v in vars(args).items() if k in FLAGS and v is not None}
    if args.no_tracking:
        flags["tracking.enabled"] = False
    if args.no_tune:
        flags["fitness.tune"] = False
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} must be KEY=VALUE, e.g. --set task.lr=0.1")
        flags[key.strip()] = _value(text.strip())
    toml = load_toml(args.config) if args.config else {}
    layers: list[tuple[str, dict[str, Any]]] = []
    preset = args.preset or toml.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            close = difflib.get_close_matches(str(preset), PRESETS, n=1)
            raise ConfigError(f"unknown preset {preset!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                              f"; valid: {', '.join(sorted(PRESETS))}"))
        layers.append((f"preset {preset}", {**PRESETS[preset], "preset": preset}))
    if toml:
        layers.append((str(args.config), toml))
    layers.append(("flags", dotted(flags)))
    base = None
    if args.resume:
        probe = build(layers)  # where is the checkpoint? (name and checkpoint_dir may come from any layer)
        folder = RunFolder(probe.run_dir)
        snap = folder.read_snapshot()
        folder.config(snap)  # a malformed config is the checkpoint's fault, not the flags'
        base = snap["config"]
    return build(layers, base=base)


def _check_data(cfg: SearchConfig) -> None:
    try:
        load(cfg.task.dataset, seed=cfg.task.split_seed, root=cfg.task.data_root)
    except DataError as exc:
        raise ConfigError(evolve_hint(f"task.dataset = {cfg.task.dataset!r}: {exc}"))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stop_on_sigterm()
    try:
        cfg = resolve(args)
        if args.show_config:
            print("\n".join(f"{k} = {v}" for k, v in flatten(cfg.to_dict()).items()))
            return 0
        if args.resume and args.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other; use one")
        if args.repair and not args.resume:
            raise ConfigError("--repair mends the journal of a search you continue; add --resume")
        if not cfg.parallel.scheduler:  # a LocalCluster's or loky's processes all run here
            check_workers(PROG, cfg.parallel.workers, args.force)
        _check_data(cfg)
        outcome = run_search(cfg, resume=args.resume, overwrite=args.overwrite, repair=args.repair,
                             progress=not args.no_progress)
    except (ConfigError, CheckpointError, TrackingError, BackendError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt as exc:  # before the search loop took over Ctrl-C and SIGTERM, or a second Ctrl-C
        print(f"{PROG}: interrupted; the journal keeps every result: --resume continues", file=sys.stderr)
        return interrupted_code(exc)
    print_summary(cfg, outcome)
    if outcome.status == "task error":
        _fail(f"the task is broken: the {cfg.space.reference} seed cannot train ({outcome.message}); check the "
              "[task] settings, e.g. a smaller learning rate: --set task.lr=0.01")
    if outcome.status == "write error":
        _fail(f"{outcome.message}; the search stopped and {cfg.run_dir} keeps its results: "
              "resume with --resume once fixed")
    return 128 + outcome.signum if outcome.status == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
