"""One controller per search (issue 15, fault 1): while a search runs, a second start, --resume or --overwrite of it
is one line naming the running process, exit 2, and touches nothing; a lock left by a killed process never blocks."""
from __future__ import annotations

import subprocess
from pathlib import Path

from tests.gp_backprop.conftest import cli, cli_env
from tests.reliability.conftest import ENV, EVALS, FLAGS, evolve, folder, kill9, population, start, wait_results


def test_a_second_controller_is_refused_and_the_first_search_is_intact(tmp_path: Path, unbroken: list) -> None:
    first = start(tmp_path, "s", "--max-evals", "100000")   # runs until it is killed
    wait_results(tmp_path, "s", 3, first)
    journal = (folder(tmp_path, "s") / "journal.jsonl").read_bytes()
    others = [subprocess.Popen(cli(*FLAGS, "--name", "s", *extra), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=cli_env(**ENV))
              for extra in ([], ["--resume"], ["--overwrite"])]
    for proc in others:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert err.count("\n") == 1 and err.startswith(f"evolve: error: search 's' is in use by process {first.pid} (")
        assert "gp_backprop/evolve.py" in err and "or pick another --name" in err
    assert first.poll() is None                                        # the first search runs on
    assert (folder(tmp_path, "s") / "journal.jsonl").read_bytes().startswith(journal)  # not reset, not cut
    kill9(tmp_path, "s", first)

    resumed = evolve(tmp_path, "s", "--resume")                        # the dead process's lock does not block
    assert resumed.returncode == 0, resumed.stderr
    # It ran past EVALS before the kill; its first EVALS evaluations are those of the unbroken search.
    assert population(tmp_path, "s")[:EVALS] == unbroken
