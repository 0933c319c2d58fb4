"""A tiny campaign end to end (campaigns/tiny.toml: two searches of 12 candidates on the synthetic task, the funnel
of their pooled top 3 in A1, one transfer setup): killed with SIGKILL in the middle of its second search and resumed,
it ends with the tables of an unbroken campaign; run again when finished, it trains nothing; every run it makes is
under its one MLflow run."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gp_backprop.campaign.__main__ import main
from gp_backprop.tracking import client
from tests.gp_backprop.conftest import ROOT, cli_env

TINY = ROOT / "campaigns" / "tiny.toml"
OUT = Path("mlruns/campaign-results/tiny")
STATE = Path("mlruns/campaigns/tiny")
DEADLINE = 180.0   # seconds: generous, only a hung process meets it


def tables(cwd: Path) -> dict[str, str]:
    return {stage: (cwd / OUT / stage / "funnel.md").read_text() for stage in ("funnel", "transfer")}


def journaled(cwd: Path, search: str) -> int:
    journal = cwd / "mlruns" / "searches" / search / "journal.jsonl"
    return journal.read_bytes().count(b'{"r"') if journal.exists() else 0


def all_runs(cwd: Path) -> list:
    mc = client(f"sqlite:///{cwd}/mlruns/mlflow.db")
    ids = [e.experiment_id for e in mc.search_experiments()]
    return list(mc.search_runs(ids, "", max_results=5000))


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny campaign run from start to end in one go, in its own folder."""
    cwd = tmp_path_factory.mktemp("unbroken")
    shutil.copy(TINY, cwd / "tiny.toml")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        assert main(["tiny.toml", "--no-progress"]) == 0
    return cwd


def kill_mid_search(cwd: Path) -> None:
    """Start the campaign as a user would, SIGKILL it once its second search has journaled 2 of its 12 results,
    and wait until its worker processes are gone too."""
    with open(cwd / "campaign.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gp_backprop.campaign", "tiny.toml", "--no-progress"],
                                cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=cli_env())
    deadline = time.monotonic() + DEADLINE
    while journaled(cwd, "tiny-s2") < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    kids = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=DEADLINE) == -signal.SIGKILL, (cwd / "campaign.err").read_text()
    while any(Path(f"/proc/{p}").exists() for p in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 2 <= journaled(cwd, "tiny-s2") < 12                  # killed in the middle of the second search


def test_a_campaign_killed_mid_search_resumes_to_the_tables_of_an_unbroken_one(unbroken, tmp_path, monkeypatch,
                                                                               capsys):
    shutil.copy(TINY, tmp_path / "tiny.toml")
    kill_mid_search(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert (STATE / "search-s1.done.json").exists() and not (STATE / "search-s2.done.json").exists()
    with pytest.raises(SystemExit) as info:                         # a stopped campaign continues only on request
        main(["tiny.toml", "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "add --resume to continue it" in err
    killed = json.loads(Path("mlruns/searches/tiny-s2/checkpoint.json").read_text())["tracking"]["run_id"]
    assert main(["tiny.toml", "--resume", "--no-progress"]) == 0
    assert tables(tmp_path) == tables(unbroken)
    assert json.loads((STATE / "search-s2.done.json").read_text())["run_id"] == killed   # continued, not redone

    runs = all_runs(tmp_path)
    campaign = [r for r in runs if r.data.tags.get("gp.kind") == "campaign"]
    assert len(campaign) == 1 and campaign[0].info.status == "FINISHED"
    top = campaign[0].info.run_id
    under = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == top]
    assert sorted(r.info.run_name for r in under) == ["funnel A1 SGD", "funnel longer SGD", "search tiny-s1",
                                                       "search tiny-s2"]    # one of each: the killed one resumed
    assert all(r.info.experiment_id == campaign[0].info.experiment_id for r in runs)
    searches = {r.info.run_id for r in under if r.info.run_name.startswith("search")}
    candidates = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in searches]
    assert len(candidates) == 2 * 12                                # every candidate once, none lost or doubled
    readme = (tmp_path / OUT / "README.md").read_text()
    assert "python -m gp_backprop.campaign tiny.toml" in readme and "over 2 session(s)" in readme
    for name in ("searches.png", "differences_funnel.png", "differences_transfer.png", "funnel/curves_A1_SGD.png",
                 "transfer/curves_longer_SGD.png"):
        assert (tmp_path / OUT / name).stat().st_size > 0 and f"({name})" in readme


def test_a_finished_campaign_run_again_trains_nothing(unbroken, monkeypatch, capsys):
    monkeypatch.chdir(unbroken)
    before = {r.info.run_id for r in all_runs(unbroken)}
    stamps = {p: p.stat().st_mtime_ns for p in STATE.glob("*.json") if p.name != "state.json"}
    capsys.readouterr()
    assert main(["tiny.toml", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert {r.info.run_id for r in all_runs(unbroken)} == before    # no search, funnel or transfer run again
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    for stage in ("search tiny-s1", "search tiny-s2", "funnel", "transfer"):
        assert f"{stage}: done" in out
    assert "over 1 session(s)" in (OUT / "README.md").read_text()


def test_a_started_campaign_keeps_its_plan(unbroken, monkeypatch, capsys):
    monkeypatch.chdir(unbroken)
    changed = (unbroken / "tiny.toml").read_text().replace("top = 3", "top = 4")
    (unbroken / "changed.toml").write_text(changed)
    with pytest.raises(SystemExit) as info:
        main(["changed.toml", "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "changed.toml: funnel.top is '4' now but was '3' when campaign 'tiny' started" in err


def test_the_published_campaigns_are_sized_as_issue_22_asks():
    from gp_backprop.campaign import load

    for name in ("mnist1d", "ftprop-sign"):
        c = load(ROOT / "campaigns" / f"{name}.toml")
        assert len(c.searches) >= 3 and all(s.budget.max_evals >= 2000 for s in c.searches)
        assert c.funnel.top == 10 and {"A1", "A2", "A3"} <= set(c.funnel.setups) and c.funnel.seeds >= 5
        assert len(c.transfer) >= 3 and str(c.out) == f"results/{name}"
        assert {s.task for s in c.searches} == {c.searches[0].task}          # one task, pooled


def test_redo_trains_one_re_test_stage_again_and_keeps_the_rest(unbroken, tmp_path, monkeypatch, capsys):
    cwd = tmp_path / "copy"
    shutil.copytree(unbroken, cwd)
    monkeypatch.chdir(cwd)
    kept = {p.name: p.read_bytes() for p in STATE.glob("*.done.json") if not p.name.startswith("transfer")}
    before = json.loads((STATE / "transfer.done.json").read_text())["run_id"]
    capsys.readouterr()
    assert main(["tiny.toml", "--redo", "transfer", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "search tiny-s1: done" in out and "funnel: done" in out and "transfer: done" not in out
    assert {p: (STATE / p).read_bytes() for p in kept} == kept             # searches and funnel untouched
    after = json.loads((STATE / "transfer.done.json").read_text())["run_id"]
    assert after != before and tables(cwd) == tables(unbroken)            # trained again, to the same table
    transfer = [r for r in all_runs(cwd) if r.info.run_name == "funnel longer SGD"]
    assert [r.info.run_id for r in transfer] == [after]                   # logged once: the old run is gone
    assert "over 2 session(s)" in (OUT / "README.md").read_text()


def test_redo_needs_a_started_campaign_and_contradicts_overwrite(tmp_path, monkeypatch, capsys):
    shutil.copy(TINY, tmp_path / "tiny.toml")
    monkeypatch.chdir(tmp_path)
    for flags, message in ((["--redo", "funnel"], "--redo: campaign 'tiny' has not started"),
                           (["--redo", "funnel", "--overwrite"], "--redo and --overwrite contradict each other")):
        with pytest.raises(SystemExit) as info:
            main(["tiny.toml", *flags, "--no-progress"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and message in err
    assert not (STATE / "state.json").exists()                           # no campaign was started
