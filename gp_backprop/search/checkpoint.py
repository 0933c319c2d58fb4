"""A search's folder: ``checkpoint.json`` (a JSON snapshot of the whole state) and ``journal.jsonl`` (every event).

The snapshot is rewritten atomically (temporary file, fsync, rename; STYLE §10) every few seconds, on a
background thread. Between snapshots every result told is appended to the journal at once (``{"r": entry}``), with
the number of proposals that followed it (``{"p": n}``), and so is a candidate that finished before an older one and
waits for its turn (``{"h": result}``), so after ``kill -9`` a resume replays the journal onto the snapshot and no
completed evaluation is lost or trained again.
No pickle anywhere: both files are plain JSON a person can read. A file that is not what this code wrote is refused
with one line naming it and the fix; a write that fails (disk full, read-only) raises ``WriteError`` naming the path.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from gp_backprop.config import ConfigError, SearchConfig, build

__all__ = ["RunFolder", "CheckpointError", "WriteError", "VERSION"]

VERSION = 1
_FIX = "restore it from a backup, or start over with --overwrite"
# Top-level fields of a snapshot and of its controller state, with their JSON types.
_SNAPSHOT = {"version": int, "journal_events": int, "status": str, "elapsed": (int, float), "config": dict,
             "controller": dict}
_CONTROLLER = {"rng": list, "next_cid": int, "proposals": int, "init_made": int, "hits": dict, "inflight": list,
               "population": list}
_RESULT = ("cand", "result", "busy", "t", "at")
_HELD = {"cid": int, "result": dict, "score": dict, "busy": (int, float)}


class CheckpointError(ValueError):
    """The checkpoint cannot be used; the message says why and what to do."""


class WriteError(CheckpointError):
    """A file of the search folder could not be written (disk full, read-only, file size limit)."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(f"cannot write {path} ({exc.strerror or type(exc).__name__})")


class RunFolder:
    """``<tracking.checkpoint_dir>/<name>/``. Only the controller process writes here."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.snapshot_path = self.path / "checkpoint.json"
        self.journal_path = self.path / "journal.jsonl"
        self.events = 0                       # journal events written so far
        self.write_seconds = 0.0              # how long the last snapshot took to write
        self.failure: WriteError | None = None  # a background snapshot that could not be written
        self._covered = 0                     # journal events the loaded snapshot covers
        self._starts: list[int] = []          # byte offset of each journal line read by load()
        self._journal: TextIO | None = None
        self._writer: threading.Thread | None = None

    def exists(self) -> bool:
        return self.snapshot_path.exists()

    def read_snapshot(self) -> dict[str, Any]:
        """The snapshot, checked field by field: anything else is one ``CheckpointError`` line."""
        path = self.snapshot_path
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {path}; start the search without --resume") from None
        except OSError as exc:
            raise CheckpointError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
        except ValueError as exc:  # not UTF-8, or not JSON
            raise CheckpointError(f"{path} is not a checkpoint (not JSON: {str(exc)[:80]}); {_FIX}") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path} is not a checkpoint (a JSON {type(data).__name__}, not an object); {_FIX}")
        if data.get("version") != VERSION:
            raise CheckpointError(f"{path} has version {data.get('version')!r}, this code reads {VERSION}; {_FIX}")
        problem = _missing(data, _SNAPSHOT) or _missing(data["controller"], _CONTROLLER, "controller.")
        if problem:
            raise CheckpointError(f"{path} is not a whole checkpoint ({problem}); {_FIX}")
        if data["journal_events"] < 0 or not isinstance(data.get("tracking", {}), dict):
            raise CheckpointError(f"{path} is not a whole checkpoint (bad journal_events or tracking); {_FIX}")
        return data

    def config(self, snap: dict[str, Any]) -> SearchConfig:
        """The search configuration a snapshot holds."""
        try:
            return build([], base=snap["config"])
        except (ConfigError, TypeError) as exc:
            raise CheckpointError(f"{self.snapshot_path} holds an invalid config ({exc}); {_FIX}") from None

    def load(self, repair: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The snapshot and the journal events after it. A torn last line (killed mid-write) is dropped; a corrupt
        line before the last is refused with its number, or with ``repair`` cut off with everything after it. A
        journal shorter than the snapshot's count (deleted, cut) is fine: the snapshot holds those events."""
        snap = self.read_snapshot()
        done = snap["journal_events"]
        events = self._read_journal(done, repair)
        if len(events) < done:
            print(f"note: {self.journal_path} has {len(events)} of the {done} events the checkpoint covers; "
                  "resuming from the checkpoint alone", file=sys.stderr)
            snap["journal_events"] = done = len(events)
            self._write(json.dumps(snap, separators=(",", ":")))  # so the journal's new lines count from here
        self.events, self._covered = len(events), done
        return snap, events[done:]

    def _read_journal(self, done: int, repair: bool) -> list[dict[str, Any]]:
        try:
            data = self.journal_path.read_bytes()
        except FileNotFoundError:
            return []
        events: list[dict[str, Any]] = []
        self._starts, pos = [], 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            event, why = _event(data[pos:end if end >= 0 else len(data)])
            if event is None and (end < 0 or end + 1 >= len(data)):
                break  # a torn last line: the process was killed while writing it; its result trains again
            if event is None:
                line, rest = len(events) + 1, data[pos:].split(b"\n")
                results = sum(r.startswith(b'{"r"') for k, r in enumerate(rest) if len(events) + k >= done)
                if not repair:
                    raise CheckpointError(
                        f"{self.journal_path} line {line} is corrupt ({why}); add --repair to keep the {line - 1} "
                        f"lines before it and drop the rest ({results} results, trained again), or restore the file")
                print(f"repaired {self.journal_path}: kept lines 1-{line - 1}, dropped {results} results from line "
                      f"{line} on; their candidates train again", file=sys.stderr)
                break
            events.append(event)
            self._starts.append(pos)
            pos = end + 1
        self._truncate(pos)
        return events

    def _truncate(self, size: int) -> None:
        if self.journal_path.exists() and self.journal_path.stat().st_size > size:
            try:
                with open(self.journal_path, "r+b") as f:
                    f.truncate(size)
            except OSError as exc:
                raise WriteError(self.journal_path, exc) from None

    def line_of(self, i: int) -> int:
        """The journal line number of event ``i`` of those ``load`` returned."""
        return self._covered + i + 1

    def cut(self, i: int) -> None:
        """Drop event ``i`` of those ``load`` returned and every event after it (``--repair``)."""
        at = self._covered + i
        self._truncate(self._starts[at])
        print(f"repaired {self.journal_path}: kept lines 1-{at}, dropped {self.events - at} events from line "
              f"{at + 1} on; "
              "their candidates train again", file=sys.stderr)
        self.events = at

    def reset(self) -> None:
        """Start a new search here: remove an old snapshot and journal."""
        self.path.mkdir(parents=True, exist_ok=True)
        for p in (self.snapshot_path, self.journal_path):
            p.unlink(missing_ok=True)
        self.events = 0

    def append(self, event: dict[str, Any] | str) -> None:
        """One journal line (a dict, or its JSON text). Flushed to the OS at once: a killed process loses nothing
        written (fsync comes with the next snapshot, against power loss)."""
        text = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
        try:
            if self._journal is None:
                self._journal = open(self.journal_path, "a", encoding="utf-8")
            self._journal.write(text + "\n")
            self._journal.flush()
        except OSError as exc:  # a part of the line may be written: a torn last line, dropped on --resume
            raise WriteError(self.journal_path, exc) from None
        self.events += 1

    def save(self, fields: dict[str, Any], controller_json: str, background: bool = False) -> bool:
        """Write a snapshot of ``fields`` plus the controller's state (JSON text), covering the journal so far.
        ``background``: write on a thread (skipped, returning False, while the previous one is still writing)."""
        if self._writer is not None and self._writer.is_alive():
            if background:
                return False
            self._writer.join()
        head = json.dumps({"version": VERSION, "journal_events": self.events, **fields}, separators=(",", ":"))
        text = f'{head[:-1]},"controller":{controller_json}}}'
        if background:
            self._writer = threading.Thread(target=self._write_or_note, args=(text,), name="checkpoint-writer",
                                            daemon=True)
            self._writer.start()
        else:
            self._write(text)
        return True

    def _write_or_note(self, text: str) -> None:
        """``_write`` on the background thread: a failure is kept for the search loop to act on."""
        try:
            self._write(text)
        except WriteError as exc:
            self.failure = self.failure or exc

    def _write(self, text: str) -> None:
        try:
            self._write_atomically(text)
        except OSError as exc:
            raise WriteError(Path(exc.filename) if exc.filename else self.snapshot_path, exc) from None

    def _write_atomically(self, text: str) -> None:
        t = time.monotonic()
        if self._journal is not None:
            os.fsync(self._journal.fileno())
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".checkpoint-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # mkstemp makes it private; a checkpoint is meant to be read
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.snapshot_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
        self.write_seconds = time.monotonic() - t

    def close(self) -> None:
        if self._writer is not None:
            self._writer.join()
        if self._journal is not None:
            try:
                self._journal.close()
            except OSError:  # the write that failed, retried by close: the loop already reported it
                pass
            self._journal = None


def _missing(data: dict[str, Any], fields: dict[str, Any], prefix: str = "") -> str:
    """The first field of ``fields`` that ``data`` lacks or holds with another JSON type, as text ("" if none)."""
    for key, kind in fields.items():
        if key not in data:
            return f"no {prefix}{key}"
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"{prefix}{key} is a {type(value).__name__}"
    return ""


def _event(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """A journal line as its event, or None and why it is not one."""
    try:
        event = json.loads(line)
    except ValueError:
        return None, "not JSON"
    if isinstance(event, dict) and list(event) == ["p"]:
        ok = isinstance(event["p"], int) and not isinstance(event["p"], bool) and event["p"] >= 0
    elif isinstance(event, dict) and list(event) == ["r"]:
        r = event["r"]
        ok = (isinstance(r, dict) and all(k in r for k in _RESULT) and isinstance(r["cand"], dict)
              and isinstance(r["cand"].get("cid"), int) and isinstance(r["result"], dict))
    elif isinstance(event, dict) and list(event) == ["h"]:
        ok = isinstance(event["h"], dict) and not _missing(event["h"], _HELD)
    else:
        ok = False
    return (event, "") if ok else (None, "not a journal event")
