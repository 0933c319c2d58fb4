"""Campaign files: each mistake is one line on stderr naming the key and the fix, exit code 2, before anything is
written; a good file is read into one search per seed, the funnel's plan and the transfer setups."""
from __future__ import annotations

from pathlib import Path

import pytest

from gp_backprop.campaign import load
from gp_backprop.campaign.__main__ import main

GOOD = """
name = "c"
[search]
seeds = [1, 2]
max_evals = 4
[search.task]
dataset = "synthetic"
epochs = 2
[search.task.model]
widths = [16]
[funnel]
top = 2
setups = ["A1"]
seeds = 2
[[transfer]]
label = "longer"
[transfer.task]
epochs = 4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_a_good_file_is_a_search_per_seed_a_funnel_and_transfers(tmp_path, capsys):
    c = load(write(tmp_path, GOOD))
    assert [(s.name, s.seed, s.budget.max_evals) for s in c.searches] == [("c-s1", 1, 4), ("c-s2", 2, 4)]
    assert all(s.tracking.experiment == "campaign-c" and s.task.dataset == "synthetic" for s in c.searches)
    assert c.searches[0].task.hurdle_epoch == 4                      # the default preset's search, as evolve's
    assert (c.funnel.top, c.funnel.setups, c.funnel.seeds) == (2, ("A1",), 2) and str(c.out) == "results/c"
    (t,) = c.transfer
    assert (t.label, t.task.epochs, t.task.dataset, t.task.hurdle_epoch) == ("longer", 4, "synthetic", 0)
    assert t.description == "epochs = 4"
    assert main([str(tmp_path / "c.toml"), "--check"]) == 0
    assert "c-s2: seed 2, 4 candidates" in capsys.readouterr().out and not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("old, new, message", [
    ('name = "c"', 'name = "c"\nnmae = 1', "unknown key 'nmae'; did you mean 'name'?"),
    ('name = "c"', 'name = "a b"', "name = 'a b' must be letters, digits"),
    ("seeds = [1, 2]", "seeds = [1, 1]", "search.seeds = [1, 1] must be distinct seeds >= 0"),
    ("seeds = [1, 2]", "seeds = [1, 2]\npreset = 'mnist-1d'", "search.preset = 'mnist-1d' is unknown; did you mean "
                                                              "'mnist1d'?"),
    ("seeds = [1, 2]", "seeds = [1, 2]\nseed = 3", "search.seed is set by the campaign"),
    ("seeds = [1, 2]", "seeds = [1, 2]\nspcae = {}", "unknown key 'search.spcae'; did you mean 'space'?"),
    ("[search.task]", "[search.space]\npopulaton = 8\n[search.task]", "[search]: unknown key 'space.populaton'; did "
                                                                       "you mean 'population'?"),
    ("[search.task]", "[search.space]\npopulation = 0\n[search.task]", "[search]: space.population = 0 must be >= 1"),
    ("[search.task]", "[search.budget]\nmax_evals = 9\n[search.task]", "search.max_evals and search.budget.max_evals"
                                                                        " both set the budget; keep one"),
    ("[search.task]", "[search.tracking]\nenabled = false\n[search.task]", "a campaign records every run in MLflow"),
    ("top = 2", "tpo = 2", "unknown key 'funnel.tpo'; did you mean 'top'?"),
    ("seeds = 2", "seeds = 1", "funnel.seeds = 1: the paired tests need at least 2 fresh seeds"),
    ('setups = ["A1"]', 'setups = ["A4"]', "funnel.setups: unknown setup 'A4'"),
    ('setups = ["A1"]', 'setups = ["B1"]', "funnel.setups: B1 (WRN 10-1, 100 epochs) is for WRN searches"),
    ("top = 2", "top = 2\ncontrols = ['backprop', 'ftp_sh']", "funnel.controls: seed 'ftp_sh' needs the "
                                                              "hard-threshold functions"),
    ("top = 2", "top = 2\ncontrols = ['backprp']", "funnel.controls: unknown seed 'backprp'; did you mean "
                                                   "'backprop'?"),
    ("top = 2", "top = 2\ntimeout = 'soon'", "funnel.timeout = 'soon' is not a duration"),
    ('label = "longer"', 'label = "a b"', "transfer[0].label = 'a b' must be letters, digits"),
    ('label = "longer"', 'label = "A1"', "transfer[0].label = 'A1' is taken"),
    ("[transfer.task]\nepochs = 4", "", "transfer[0] needs a [transfer.task] table of the settings it changes"),
    ("epochs = 4\n", "epoch = 4\n", "unknown key 'transfer[0].task.epoch'; did you mean 'epochs'?"),
    ("epochs = 4\n", "dataset = 'digitz'\n", "transfer[0] (longer): unknown dataset 'digitz'"),
    ("epochs = 4\n", "epochs = 4\n[[transfer]]\nlabel = 'x'\n[transfer.task]\nlr = 'big'\n",
     "transfer[1].task.lr = 'big' must be float"),
    ('name = "c"', 'name = "c"\n[oops', "not valid TOML"),
])
def test_a_bad_campaign_file_is_one_line_naming_the_key_and_the_fix(tmp_path, capsys, old, new, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SystemExit) as info:
        main([str(path), "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"campaign: error: {path}") and message in err, err
    assert not (tmp_path / "mlruns").exists()                        # nothing written


def test_a_missing_file_and_contradicting_flags_are_one_line(tmp_path, capsys):
    for argv, message in ((["nope.toml"], "nope.toml: no such campaign file"),
                          ([str(write(tmp_path, GOOD)), "--resume", "--overwrite"],
                           "--resume and --overwrite contradict each other")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("name", ["mnist1d", "ftprop-sign"])
def test_every_re_test_of_a_published_campaign_trains_in_full(name):
    """The searches stop hopeless and diverging candidates early; the funnel and the transfer report full trainings,
    so none of the search's hurdles or divergence factors reaches their setups."""
    from gp_backprop.campaign.retest import stage_setups

    c = load(Path(__file__).parents[3] / "campaigns" / f"{name}.toml")
    search = c.searches[0].task
    assert search.diverge_step and search.diverge_epoch      # the searches do stop early
    for stage in ("funnel", "transfer"):
        for setup in stage_setups(c, stage):
            t = setup.task
            assert (t.hurdle_epoch, t.hurdles, t.diverge_step, t.diverge_epoch) == (0, (), 0.0, 0.0), setup.label
