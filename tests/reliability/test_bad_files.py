"""Every bad file is one line and exit 2 (issue 15, faults 2 and 3): a malformed checkpoint in every form, a corrupt
journal line before the last (refused with its number; --repair keeps what is before it), while a torn last line is
dropped and a missing journal resumes from the checkpoint alone, both ending where an unbroken search ends."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.gp_backprop.conftest import cli, cli_env
from tests.reliability.conftest import ENV, FLAGS, evolve, folder, population, snapshot

FIX = "restore it from a backup, or start over with --overwrite"


MALFORMED = {
    "random bytes": lambda snap: os.urandom(256),
    "a JSON list": lambda snap: b"[]",
    "only a version": lambda snap: b'{"version": 1}',
    "a missing key": lambda snap: json.dumps({k: v for k, v in snap.items() if k != "controller"}).encode(),
    "a wrong type": lambda snap: json.dumps({**snap, "journal_events": "12"}).encode(),
    "a bad controller": lambda snap: json.dumps({**snap, "controller": {**snap["controller"], "rng": [1]}}).encode(),
    "a bad config": lambda snap: json.dumps({**snap, "config": {**snap["config"], "seed": "five"}}).encode(),
}


def test_a_malformed_checkpoint_is_one_line_in_every_form(interrupted: Path) -> None:
    path = folder(interrupted, "s") / "checkpoint.json"
    good = path.read_bytes()
    procs = {}
    for form, make in MALFORMED.items():  # each in its own copy of the search, all at once
        cwd = interrupted / form.replace(" ", "_")
        (cwd / "mlruns" / "searches").mkdir(parents=True)
        dest = cwd / "mlruns" / "searches" / "s"
        dest.mkdir()
        (dest / "journal.jsonl").write_bytes((folder(interrupted, "s") / "journal.jsonl").read_bytes())
        (dest / "checkpoint.json").write_bytes(make(json.loads(good)))
        procs[form] = subprocess.Popen(cli(*FLAGS, "--name", "s", "--resume"), cwd=cwd, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=cli_env(**ENV))
    for form, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and err.count("\n") == 1, (form, err)
        assert err.startswith("evolve: error: ") and "mlruns/searches/s/checkpoint.json" in err, (form, err)
        assert err.rstrip().endswith(FIX) and "Traceback" not in err, (form, err)


def test_a_corrupt_journal_line_is_refused_then_repaired(interrupted: Path, unbroken: list) -> None:
    path = folder(interrupted, "s") / "journal.jsonl"
    done = snapshot(interrupted, "s")["journal_events"]  # lines the checkpoint covers: not lost when cut
    lines = path.read_bytes().split(b"\n")
    line = len(lines) - 3                                # two whole lines follow it (the split ends with b"")
    lines[line - 1] = b'{"r":{"cand":' + b"\x00" * 10
    path.write_bytes(b"\n".join(lines))
    lost = sum(x.startswith(b'{"r"') for k, x in enumerate(lines[:-1], 1) if k >= line and k > done)

    refused = evolve(interrupted, "s", "--resume")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr == (f"evolve: error: mlruns/searches/s/journal.jsonl line {line} is corrupt (not JSON); "
                              f"add --repair to keep the {line - 1} lines before it and drop the rest ({lost} "
                              "results, trained again), or restore the file\n")
    assert path.read_bytes() == b"\n".join(lines)                                    # touched nothing

    repaired = evolve(interrupted, "s", "--resume", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert f"kept lines 1-{line - 1}, dropped {lost} results from line {line} on" in repaired.stderr
    assert population(interrupted, "s") == unbroken


def test_a_torn_last_line_is_dropped_silently(interrupted: Path, unbroken: list) -> None:
    with open(folder(interrupted, "s") / "journal.jsonl", "ab") as f:
        f.write(b'{"r":{"index":12,"ca')                                      # kill -9 in the middle of a write
    resumed = evolve(interrupted, "s", "--resume")
    assert resumed.returncode == 0 and "journal" not in resumed.stderr, resumed.stderr
    assert population(interrupted, "s") == unbroken


def test_a_missing_journal_resumes_from_the_checkpoint_alone(interrupted: Path, unbroken: list) -> None:
    (folder(interrupted, "s") / "journal.jsonl").unlink()
    resumed = evolve(interrupted, "s", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "journal.jsonl has 0 of the" in resumed.stderr and "resuming from the checkpoint alone" in resumed.stderr
    assert population(interrupted, "s") == unbroken
