"""Configuration: documented defaults, presets, layering, and one-line errors with exit code 2 for bad settings."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from evaluators import evaluate
from gp_backprop.config import ConfigError, SearchConfig, build, parse_duration
from gp_backprop.evolve import main
from gp_backprop.presets import PRESETS
from primitives import SEEDS
from tests.gp_backprop.conftest import cli, cli_env


def test_defaults_are_the_documented_mnist1d_search() -> None:
    cfg = SearchConfig()
    assert (cfg.budget.max_evals, cfg.space.population, cfg.space.p_top) == (1000, 100, 0.7)
    assert cfg.space.k_weights == (1.0,) and cfg.space.selection == "top_n"
    assert (cfg.parallel.backend, cfg.parallel.workers, cfg.evaluation.function) == ("loky", 0, "evaluators:evaluate")
    assert cfg.tracking.uri == "sqlite:///mlruns/mlflow.db" and cfg.task.dataset == "mnist1d"
    assert cfg.task.model.widths == (100, 100) and cfg.name == "mnist1d"
    assert (cfg.fitness.tune, cfg.fitness.tune_points, cfg.fitness.tune_seeds) == (True, 8, 3)
    assert (cfg.fitness.lr_grid, cfg.fitness.extra_seeds) == ((0.5, 1.0, 2.0), 2)
    assert build([]) == cfg
    # The search's early stop (config.SEARCH_TASK): twice chance after a fifth of the epochs.
    assert (cfg.task.hurdle_epoch, cfg.task.hurdle_acc, cfg.task.epochs) == (4, 0.2, 20)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds(preset: str) -> None:
    cfg = build([(preset, {**PRESETS[preset], "preset": preset})])
    assert cfg.preset == preset


def test_presets_say_what_the_paper_ran() -> None:
    a1 = build([("a1", PRESETS["paper-a1"])]).task
    b1 = build([("b1", PRESETS["paper-b1"])]).task
    sign = build([("s", PRESETS["ftprop-sign"])])
    assert (a1.dataset, a1.model.arch, a1.model.depth, a1.model.width, a1.epochs) == ("cifar10", "wrn", 16, 2, 20)
    assert (b1.model.depth, b1.model.width, b1.epochs, b1.schedule) == (10, 1, 100, "cosine")
    assert (a1.hurdle_epoch, b1.hurdle_epoch) == (4, 20)  # a fifth of the epochs in both
    assert sign.task.model.activation == "sign" and sign.space.hard_threshold
    assert sign.space.init == "seeds:ftp_sh,sste"


def test_the_mnist1d_preset_trains_backprop_past_the_search_hurdle() -> None:
    task = build([("m", PRESETS["mnist1d"])]).task
    assert (task.dataset, task.model.widths, task.hurdle_epoch) == ("mnist1d", (100, 100), 4)
    r = evaluate(SEEDS["backprop"], task)   # the reference line of every search must not be stopped early
    assert r.status == "ok" and len(r.val_curve) == task.epochs and r.val_curve[3] > task.hurdle_acc + 0.1


def test_layers_apply_in_order_and_coerce_types() -> None:
    cfg = build([("a", {"space": {"population": 5}, "task": {"model": {"widths": [8, 8]}}}),
                 ("b", {"space": {"population": "7"}, "budget": {"time_budget": "10m"}})])
    assert cfg.space.population == 7 and cfg.task.model.widths == (8, 8) and cfg.budget.time_budget == 600.0


@pytest.mark.parametrize("text, seconds", [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


# (command-line arguments, TOML text or None, expected message)
BAD = [
    (["--max-eval", "10"], None, r"unrecognized arguments: --max-eval 10; did you mean --max-evals\?"),
    (["--init", "seeds:backprp,fa"], None, r"space.init: unknown seed 'backprp'; did you mean 'backprop'\?"),
    (["--init", "seeds:ftp_sh"], None, r"needs the hard-threshold functions; set space.hard_threshold = true"),
    (["--init", "randm"], None, r"space.init = 'randm' must be 'random' or 'seeds:NAME,NAME,...'"),
    (["--population", "0"], None, r"space.population = 0 must be >= 1"),
    (["--set", "space.p_top=1.5"], None, r"space.p_top = 1.5 must be a probability in \[0, 1\]"),
    (["--set", "space.k_weights=[-1]"], None, r"space.k_weights = \[-1.0\] must be non-negative weights"),
    (["--selection", "tournamnet"], None, r"did you mean 'tournament'\?"),
    (["--workers", "-1"], None, r"parallel.workers = -1 must be >= 0"),
    (["--set", "parallel.chunk=0"], None, r"parallel.chunk = 0 must be >= 1 trainings per worker task"),
    (["--set", "fitness.screen_epochs=[0, 5]"], None, r"fitness.screen_epochs = \[0, 5\] must be epochs >= 1"),
    (["--set", "fitness.screen_margin=-0.1"], None, r"fitness.screen_margin = -0.1 must be a finite accuracy >= 0"),
    (["--scheduler", "tcp://127.0.0.1:8786"], None, r"needs --backend dask"),
    (["--backend", "dask", "--scheduler", "127.0.0.1"], None, r"is not a Dask address; e.g. --scheduler tcp://"),
    (["--backend", "ray"], None, r"parallel.backend = 'ray' is unknown; valid: dask, loky"),
    (["--time-budget", "10x"], None, r"budget.time_budget = '10x' is not a duration"),
    (["--set", "space.population=many"], None, r"space.population = 'many' must be int"),
    (["--set", "task.lr"], None, r"--set 'task.lr' must be KEY=VALUE"),
    (["--set", "space.populaton=5"], None, r"unknown key 'space.populaton'; did you mean 'population'\?"),
    (["--dataset", "digit"], None, r"task.dataset = 'digit' is unknown; did you mean 'digits'\?"),
    (["--set", "task.model.arch=mlpp"], None, r"\[task\]: .*mlpp"),
    (["--tracking-uri", "mlruns"], None, r"MLflow's file store, which MLflow refuses"),
    (["--name", "a/b"], None, r"name 'a/b' may hold only letters"),
    (["--preset", "paper-a2"], None, r"invalid choice: 'paper-a2'"),
    ([], "[space]\npopulaton = 5\n", r"search.toml: unknown key 'space.populaton'; did you mean 'population'\?"),
    ([], "[budgett]\nmax_evals = 5\n", r"unknown key 'budgett'; did you mean 'budget'\?"),
    ([], "[space]\npopulation = [5]\n", r"space.population = \[5\] must be int"),
    ([], "space = 3\n", r"space is a section; write \[space\]"),
    ([], "[space\n", r"not valid TOML"),
    ([], "preset = 'paper-a'\n", r"unknown preset 'paper-a'; did you mean 'paper-a1'\?"),
    (["--resume"], None, r"no checkpoint at .*; start the search without --resume"),
]


@pytest.mark.parametrize("args, toml, message", BAD, ids=[m.split(";")[0][:40] for _, _, m in BAD])
def test_bad_settings_exit_2_with_one_line(args: list[str], toml: str | None, message: str, in_tmp: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    if toml is not None:
        (in_tmp / "search.toml").write_text(toml)
        args = [*args, "--config", "search.toml"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("evolve: error: "), err
    assert re.search(message, err), err
    assert sorted(p.name for p in in_tmp.iterdir()) == (["search.toml"] if toml else [])  # nothing written


def test_missing_config_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--config", "nope.toml"])
    assert exc.value.code == 2 and "--config nope.toml: no such file" in capsys.readouterr().err


def test_the_cli_process_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(cli("--set", "space.p_top=2"), cwd=tmp_path, env=cli_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "evolve: error: space.p_top = 2.0 must be a probability in [0, 1] (the paper used 0.7)"]
    assert list(tmp_path.iterdir()) == []


def test_show_config_prints_the_resolved_settings(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "s.toml").write_text("seed = 3\n[space]\npopulation = 9\n")
    assert main(["--config", "s.toml", "--population", "11", "--preset", "ftprop-sign", "--show-config"]) == 0
    out = dict(line.split(" = ", 1) for line in capsys.readouterr().out.splitlines())
    # defaults < preset < TOML < flags
    assert (out["seed"], out["space.population"], out["space.hard_threshold"]) == ("3", "11", "True")


# (a layer given to build, the one-line message): each mistake would otherwise surface as whatever Python raises
# (TypeError from a dataclass, ValueError from int()) or pass unnoticed.
BUILD_MISTAKES = [
    ({"space": {"population": -3}}, r"^space.population = -3 must be >= 1 \(the paper used 1000\)$"),
    ({"space": {"populaton": 3}}, r"^x: unknown key 'space.populaton'; did you mean 'population'\?$"),
    ({"space": {"population": "many"}}, r"^x: space.population = 'many' must be int$"),
    ({"space": 3}, r"^x: space is a section; write \[space\] with keys under it$"),
    ({"task": {"model": {"widths": {"a": 1}}}}, r"^x: task.model.widths = .* must be a list"),
]


@pytest.mark.parametrize("layer, message", BUILD_MISTAKES)
def test_build_raises_one_config_error_line_for_each_mistake(layer: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build([("x", layer)])
    assert "\n" not in str(info.value)
