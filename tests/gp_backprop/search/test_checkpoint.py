"""The run folder: atomic JSON snapshots, a journal that survives a torn last line, and clear errors."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from gp_backprop.search.checkpoint import CheckpointError, RunFolder

# The fields the search loop writes into every snapshot, and an empty controller state.
FIELDS = {"status": "running", "elapsed": 0.0, "config": {}}
CONTROLLER = '{"rng":[],"next_cid":0,"proposals":0,"init_made":0,"hits":{},"inflight":[],"population":[]}'


def result(cid: int) -> dict:
    return {"r": {"cand": {"cid": cid}, "result": {}, "busy": 0.0, "t": 0.0, "at": 0.0}}


def test_snapshot_is_json_written_atomically(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "s")
    folder.reset()
    folder.append({"p": 2})
    folder.save({"status": "running", "x": [1, 2]}, '{"a":1}')
    folder.save({"status": "running", "x": [1, 2, 3]}, '{"a":2}', background=True)
    folder.close()
    assert sorted(p.name for p in folder.path.iterdir()) == ["checkpoint.json", "journal.jsonl"]  # no temp left
    snap = json.loads(folder.snapshot_path.read_text())
    assert snap == {"version": 1, "journal_events": 1, "status": "running", "x": [1, 2, 3], "controller": {"a": 2}}


def test_load_returns_the_journal_after_the_snapshot_and_drops_a_torn_line(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.reset()
    folder.append({"p": 1})
    folder.save(FIELDS, CONTROLLER)
    folder.append(result(0))
    folder.append({"p": 1})
    folder.close()
    with open(folder.journal_path, "a") as f:
        f.write('{"r": {"cid"')                          # killed in the middle of a write
    again = RunFolder(tmp_path)
    snap, events = again.load()
    assert snap["journal_events"] == 1 and events == [result(0), {"p": 1}]
    again.append(result(1))                             # appends after the last whole line
    again.close()
    assert json.loads(folder.journal_path.read_text().splitlines()[-1]) == result(1)


def test_a_result_waiting_for_its_turn_is_a_journal_event_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    waiting = {"h": {"cid": 3, "result": {"status": "ok"}, "score": {"mean": 0.5}, "busy": 1.0}}
    folder = RunFolder(tmp_path)
    folder.reset()
    folder.save(FIELDS, CONTROLLER)
    folder.append(waiting)
    folder.append({"h": {"cid": "3", "result": {}, "score": {}, "busy": 0.0}})   # a cid that is not a number
    folder.append({"p": 1})
    folder.close()
    with pytest.raises(CheckpointError, match="line 2 is corrupt"):
        RunFolder(tmp_path).load()
    assert RunFolder(tmp_path).load(repair=True)[1] == [waiting]


@pytest.mark.parametrize("text, message", [
    ("{oops", r"is not a checkpoint \(not JSON"),
    ('{"version": 99, "journal_events": 0}', "has version 99"),
    ('{"version": 1, "journal_events": 0}', r"is not a whole checkpoint \(no status\)"),
])
def test_unusable_checkpoints_say_what_to_do(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "checkpoint.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        RunFolder(tmp_path).load()


def test_a_journal_shorter_than_the_snapshot_resumes_from_the_snapshot(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.save(FIELDS, CONTROLLER)
    for _ in range(3):
        folder.append({"p": 1})
    folder.save(FIELDS, CONTROLLER)                     # covers the 3 events
    folder.close()
    folder.journal_path.write_text('{"p":1}\n')         # the journal lost two of them
    snap, events = RunFolder(tmp_path).load()
    assert events == [] and json.loads(folder.snapshot_path.read_text())["journal_events"] == 1


def test_a_background_save_is_skipped_while_the_previous_one_is_still_writing(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The search asks for a snapshot every few seconds; on a slow disk it must not queue them up behind each other
    (or block the search), while a final, foreground save always lands."""
    folder = RunFolder(tmp_path)
    folder.reset()
    folder.append({"p": 1})
    writing, release, fsync = threading.Event(), threading.Event(), os.fsync

    def slow_disk(fd: int) -> None:
        writing.set()
        release.wait(30)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_disk)
    assert folder.save({"status": "running", "n": 1}, "{}", background=True) is True
    assert writing.wait(30)
    assert folder.save({"status": "running", "n": 2}, "{}", background=True) is False
    release.set()
    folder.close()
    assert json.loads(folder.snapshot_path.read_text())["n"] == 1          # the skipped one was never written
    assert folder.save({"status": "finished", "n": 3}, "{}") is True
    assert json.loads(folder.snapshot_path.read_text())["n"] == 3
