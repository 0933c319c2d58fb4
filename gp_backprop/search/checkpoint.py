"""A search's folder: ``checkpoint.json`` (a JSON snapshot of the whole state) and ``journal.jsonl`` (every event).

The snapshot is rewritten atomically (temporary file, fsync, rename; STYLE §10) every few seconds, on a
background thread. Between
snapshots every result is appended to the journal at once, with the number of proposals that followed it, so after
``kill -9`` a resume replays the journal onto the snapshot and no completed evaluation is lost or trained again.
No pickle anywhere: both files are plain JSON a person can read.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["RunFolder", "CheckpointError", "VERSION"]

VERSION = 1


class CheckpointError(ValueError):
    """The checkpoint cannot be used; the message says why and what to do."""


class RunFolder:
    """``<tracking.checkpoint_dir>/<name>/``. Only the controller process writes here."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.snapshot_path = self.path / "checkpoint.json"
        self.journal_path = self.path / "journal.jsonl"
        self.events = 0                       # journal events written so far
        self.write_seconds = 0.0              # how long the last snapshot took to write
        self._journal: TextIO | None = None
        self._writer: threading.Thread | None = None

    def exists(self) -> bool:
        return self.snapshot_path.exists()

    def read_snapshot(self) -> dict[str, Any]:
        try:
            data = json.loads(self.snapshot_path.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {self.snapshot_path}; start the search without --resume")
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.snapshot_path} is not valid JSON ({exc}); start over with --overwrite")
        if data.get("version") != VERSION:
            raise CheckpointError(f"{self.snapshot_path} has version {data.get('version')}, this code reads "
                                  f"{VERSION}; start over with --overwrite")
        return data

    def load(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The snapshot and the journal events after it. A torn last line (killed mid-write) is dropped."""
        snap = self.read_snapshot()
        events: list[dict[str, Any]] = []
        good = 0                               # bytes of whole, parsable lines
        if self.journal_path.exists():
            with open(self.journal_path, "rb") as f:
                for line in f:
                    try:
                        if not line.endswith(b"\n"):
                            raise ValueError("torn line")
                        events.append(json.loads(line))
                    except ValueError:
                        break
                    good += len(line)
            with open(self.journal_path, "r+b") as f:
                f.truncate(good)
        done = snap["journal_events"]
        if len(events) < done:
            raise CheckpointError(f"{self.journal_path} has {len(events)} events but the checkpoint counts {done}; "
                                  "start over with --overwrite")
        self.events = len(events)
        return snap, events[done:]

    def reset(self) -> None:
        """Start a new search here: remove an old snapshot and journal."""
        self.path.mkdir(parents=True, exist_ok=True)
        for p in (self.snapshot_path, self.journal_path):
            p.unlink(missing_ok=True)
        self.events = 0

    def append(self, event: dict[str, Any] | str) -> None:
        """One journal line (a dict, or its JSON text). Flushed to the OS at once: a killed process loses nothing
        written (fsync comes with the next snapshot, against power loss)."""
        if self._journal is None:
            self._journal = open(self.journal_path, "a", encoding="utf-8")
        text = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
        self._journal.write(text + "\n")
        self._journal.flush()
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
            self._writer = threading.Thread(target=self._write, args=(text,), name="checkpoint-writer", daemon=True)
            self._writer.start()
        else:
            self._write(text)
        return True

    def _write(self, text: str) -> None:
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
            self._journal.close()
            self._journal = None
