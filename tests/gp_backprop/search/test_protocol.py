"""The fitness protocol (README, "The protocol"): the reference's lr is tuned before the search, logged, cached and
reused on resume; each candidate trains on an lr grid and keeps its best; a candidate entering the top N is retrained
on new seeds and its fitness is their mean; rescaled backprop does not beat backprop; hard-threshold presets measure
against FTP-SH."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evaluators import EvalResult, TaskSpec, evaluate
from primitives import SEEDS
from gp_backprop.config import SEARCH_TASK, FitnessConfig, SearchConfig, build
from gp_backprop.parallel import make_backend
from gp_backprop.presets import PRESETS
from gp_backprop.search import Candidate, run_search
from gp_backprop.search.lr_walk import LrWalk
from gp_backprop.search.scoring import Scorer, lr_walk, score_rules
from gp_backprop.tuning import lr_grid, tune, tuning_seeds
from tests.gp_backprop.conftest import tiny_config

# The controls run on the default search's own task, at backprop's tuned lr there (benchmarks/controls.py).
TUNED = 0.8


def _search(tmp_path: Path, tracking: bool = True) -> SearchConfig:
    """A tiny search under the full protocol (a 3-point tuning grid on 2 seeds, to stay quick)."""
    return tiny_config(tmp_path, fitness={"tune": True, "tune_points": 3, "tune_seeds": 2, "lr_grid": [0.5, 1.0, 2.0],
                                          "extra_seeds": 2}, tracking={"enabled": tracking})


def test_the_tuning_table_is_printed_logged_cached_and_reused_on_resume(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _search(tmp_path)
    first = run_search(cfg, progress=False)
    out = capsys.readouterr().out
    assert "Tuning the reference's lr" in out and "<- best" in out and "(from the cache)" not in out
    snap = json.loads((cfg.run_dir / "checkpoint.json").read_text())
    rows = snap["tuning"]["rows"]
    assert [r["lr"] for r in rows] == pytest.approx(lr_grid(cfg.task.lr, 3))
    best = max(rows, key=lambda r: (r["mean"], -r["val_loss"]))
    assert snap["lr"] == best["lr"]
    mc = MlflowClient(cfg.tracking.uri)
    parent = mc.get_run(first.run_id)
    assert float(parent.data.params["fitness.tuned_lr"]) == pytest.approx(snap["lr"])
    assert "lr_tuning.txt" in {a.path for a in mc.list_artifacts(first.run_id)}
    for e in first.controller.population:     # each run records the lr its search kept and every lr it tried
        run = mc.search_runs([first.experiment_id], f"tags.`gp.key` = '{e.cand.key}'")[0]
        tried = dict(pair.split(":") for pair in run.data.params["lrs_tried"].split())
        assert run.data.metrics["lr"] == pytest.approx(e.score.lr) and f"{e.score.lr:g}" in tried
        assert len(tried) == len(e.score.tried) >= 3

    resumed = run_search(build([("more", {"budget": {"max_evals": 16}})], base=cfg.to_dict()), resume=True,
                         progress=False)
    assert "Tuning the reference's lr" not in capsys.readouterr().out      # the checkpoint's lr, no retuning
    assert len(resumed.controller.population) == 16
    run_search(build([("other", {"name": "tiny2"})], base=cfg.to_dict()), progress=False)
    assert "(from the cache)" in capsys.readouterr().out                   # same task: the cached table
    assert json.loads((cfg.run_dir.parent / "tiny2" / "checkpoint.json").read_text())["lr"] == snap["lr"]


def test_each_candidate_keeps_its_best_lr_and_top_candidates_are_the_mean_of_three_seeds(tmp_path: Path) -> None:
    cfg = _search(tmp_path, tracking=False)
    out = run_search(cfg, progress=False)
    lr = json.loads((cfg.run_dir / "checkpoint.json").read_text())["lr"]
    for e in out.controller.population:   # the lr kept is the best of those tried, all powers of 2 of the tuned lr
        tried = dict(e.score.tried)
        assert e.score.lr in tried and tried[e.score.lr] == max(tried.values())
        assert all(math.log2(x / lr) == round(math.log2(x / lr)) and abs(math.log2(x / lr)) <= 6 for x in tried)
    promoted = [e for e in out.controller.population if e.score.n == 3]
    assert promoted and all(e.result.status == "ok" for e in promoted)
    assert all(e.score.n == 1 for e in out.controller.population if e.result.status != "ok")
    best = out.controller.ranked[0]
    # Retrain the best candidate on its three seeds at its chosen lr: the recorded fitness is exactly their mean.
    accs = [evaluate(best.cand.text, cfg.task.with_(lr=best.score.lr, seed=s)).fitness
            for s in tuning_seeds(cfg.task, 3)]
    assert best.fitness == pytest.approx(statistics.fmean(accs))
    assert best.score.std == pytest.approx(statistics.stdev(accs))


def test_a_candidate_enters_the_top_n_only_after_its_extra_seeds() -> None:
    task = TaskSpec(lr=0.1, seed=7)
    asked: list[float] = []

    def promising(cand: Candidate, fitness: float) -> bool:
        asked.append(fitness)
        return cand.promotes(fitness)

    scorer = Scorer(task, 0.1, LrWalk(reach=0), 2, promising)
    # The bar each was proposed with (the top N's last fitness then): 0.9 reaches it, 0.4 does not.
    good, bad = Candidate(0, "left(g, g)", "k0", bar=0.85), Candidate(1, "scale_2(g)", "k1", bar=0.85)
    jobs = scorer.start(good) + scorer.start(bad)
    assert [j.task.lr for j in jobs] == pytest.approx([0.05, 0.1, 0.2] * 2)
    assert {j.task.seed for j in jobs} == {7}
    accs = {0: 0.8, 1: 0.9, 2: 0.7, 3: 0.3, 4: 0.4, 5: 0.2}
    more, finished = [], []
    for j in jobs:
        m, f = scorer.done(j.jid, EvalResult("ok", accs[j.jid], val_loss=1.0), 0.1)
        more += m
        finished += [f] if f else []
    assert [f.cid for f in finished] == [1] and finished[0].score.n == 1 and finished[0].score.mean == 0.4
    assert [(j.cid, j.task.seed, j.task.lr) for j in more] == [(0, 1007, 0.1), (0, 1008, 0.1)]
    out = [scorer.done(j.jid, EvalResult("ok", a, val_loss=2.0), 0.1)[1] for j, a in zip(more, (0.6, 0.7))]
    assert out[0] is None and out[1].score.n == 3
    assert out[1].score.mean == pytest.approx((0.9 + 0.6 + 0.7) / 3)
    assert out[1].score.val_loss == pytest.approx((1.0 + 2.0 + 2.0) / 3)
    assert out[1].result.val_acc == 0.9 and asked == [0.9, 0.4]


def test_a_candidate_best_at_an_edge_trains_one_step_further_and_its_lrs_are_recorded() -> None:
    scorer = Scorer(TaskSpec(lr=0.1), 0.1, LrWalk(), 0, lambda cand, fitness: False)
    jobs = scorer.start(Candidate(0, "scale_0.1(g)", "k0"))
    accs = {0.05: 0.3, 0.1: 0.4, 0.2: 0.5, 0.4: 0.6, 0.8: 0.45}
    finished = None
    while jobs:
        step = [scorer.done(j.jid, EvalResult("ok", accs[round(j.task.lr, 6)], val_loss=1.0), 0.1) for j in jobs]
        jobs = [j for more, _ in step for j in more]
        finished = next((f for _, f in step if f is not None), finished)
        assert len(jobs) <= 1                     # past the bracket, one lr at a time
    assert finished.score.lr == pytest.approx(0.4) and finished.score.mean == 0.6
    assert [lr for lr, _ in finished.score.tried] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8])


def test_a_mutant_starts_its_bracket_at_its_parents_lr_when_the_lr_is_inherited() -> None:
    child = Candidate(0, "left(g, g)", "k0", parent_lr=0.025)
    never = lambda cand, fitness: False  # noqa: E731
    assert [j.task.lr for j in Scorer(TaskSpec(), 0.1, LrWalk(), 0, never, inherit=True).start(child)] == \
        pytest.approx([0.0125, 0.025, 0.05])
    assert [j.task.lr for j in Scorer(TaskSpec(), 0.1, LrWalk(), 0, never).start(child)] == pytest.approx([0.05, 0.1, 0.2])


def test_screening_stops_a_grid_training_far_behind_every_top_n_entry_and_never_an_extra_seed() -> None:
    from gp_backprop.config import SpaceConfig
    from gp_backprop.search.controller import Controller

    ctl = Controller(SpaceConfig(population=3), seed=0)
    curves = [(0.30, 0.50, 0.60), (0.20, 0.55, 0.70), (0.40, 0.45)]   # the last was stopped at epoch 2
    assert ctl.screen([1, 3], 0.05) == ()                                # no stops before the top N is full
    for curve in curves:
        cand = ctl.propose()
        assert cand.bar is None                                          # nor a bar for extra seeds
        ctl.tell(cand.cid, EvalResult("ok" if len(curve) == 3 else "hurdle", curve[-1], val_curve=curve))
    # at each epoch, the margin under the lowest accuracy any top-N entry had there (epoch 3: only two reached it)
    stops = ctl.screen([1, 2, 3], 0.05)
    assert [e for e, _ in stops] == [1, 2, 3] and [a for _, a in stops] == pytest.approx([0.15, 0.40, 0.55])

    ctl.screening = ((1, 2, 3), 0.05)
    cand = ctl.propose()                                                 # its stops are fixed when it is proposed
    assert cand.screen == stops
    assert cand.bar == 0.45 and cand.promotes(0.45) and not cand.promotes(0.449)  # and its bar: the N-th best
    task = TaskSpec(lr=0.1, hurdle_epoch=4, hurdle_acc=0.2)
    scorer = Scorer(task, 0.1, LrWalk((0.5, 1.0), reach=0), 1, lambda cand, fitness: True)
    jobs = scorer.start(cand)
    assert {j.task.hurdles for j in jobs} == {stops}
    assert {(j.task.hurdle_epoch, j.task.hurdle_acc) for j in jobs} == {(4, 0.2)}   # the task's own stays
    more = []
    for j in jobs:
        more += scorer.done(j.jid, EvalResult("ok", 0.8, val_loss=1.0), 0.1)[0]
    assert more and all(j.task.hurdles == () for j in more)             # a promoted candidate's seeds train in full


@pytest.fixture(scope="module")
def default_backend():
    backend = make_backend("loky", "evaluators:evaluate", SEARCH_TASK, workers=2)
    backend.start()
    yield backend
    backend.close()


def _fitness(backend, rules: list[str], lr: float = TUNED, walk: LrWalk | None = None) -> list:
    return score_rules(rules, SEARCH_TASK, lr, walk or lr_walk(FitnessConfig()), 2, backend)


def test_positive_control_a_rule_better_at_its_own_lr_scores_above_backprop(default_backend) -> None:
    # g/||g||_F beats tuned backprop at a quarter of its lr (benchmarks/controls.py has the truth table)
    bp, fro = _fitness(default_backend, [SEEDS["backprop"], SEEDS["backprop_fro"]])
    assert fro.score.mean >= bp.score.mean + 0.01, (fro.score, bp.score)
    assert fro.score.lr <= TUNED / 4 and fro.score.n == 3
    assert [lr for lr, _ in fro.score.tried][:3] == [TUNED / 2, TUNED, 2 * TUNED]   # where it started, recorded
    # the bracket alone (the protocol before) is blind to it: it diverges there, and scores at chance or below
    blind = _fitness(default_backend, [SEEDS["backprop_fro"]], walk=LrWalk(reach=0))[0]
    assert blind.score.mean < 0.2 and blind.result.status == "diverged"


def test_negative_control_the_starting_lr_does_not_move_backprops_fitness(default_backend) -> None:
    tuned = _fitness(default_backend, [SEEDS["backprop"]])[0]
    for start in (TUNED / 16, TUNED * 16):   # as --no-tune --set task.lr=...
        shifted = _fitness(default_backend, [SEEDS["backprop"]], lr=start)[0]
        assert (shifted.score.mean, shifted.score.lr) == (tuned.score.mean, tuned.score.lr), start


@pytest.mark.parametrize("preset, reference", [("ftprop-sign", "ftp_sh"), ("ftprop-qrelu", "ftp_sh_qrelu")])
def test_hard_threshold_presets_measure_against_ftp_sh(preset: str, reference: str) -> None:
    cfg = build([("preset", PRESETS[preset])])
    assert cfg.space.reference == reference and cfg.space.hard_threshold
    assert cfg.task.model.activation == preset.split("-")[1]
