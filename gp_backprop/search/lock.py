"""One controller per search: an exclusive OS lock (``fcntl.flock``) on ``<checkpoint_dir>/<name>/.lock``.

The lock is taken before anything in the folder is read for writing or deleted, and held for the controller's life
(``evolve`` on any backend, ``reevaluate`` of the same search). The OS releases it when its process dies, even by
``kill -9``, so a lock left by a dead process never blocks. The file holds the holder's pid and command line, for
the message a second controller gets.
"""
from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from gp_backprop.search.checkpoint import CheckpointError

__all__ = ["SearchLock", "SearchBusy", "LOCK_NAME"]

LOCK_NAME = ".lock"


class SearchBusy(CheckpointError):
    """Another live process holds the search's lock."""


class SearchLock:
    """``with SearchLock(folder, "evolve"):`` or ``acquire()`` / ``release()``; ``folder`` is created if missing."""

    def __init__(self, folder: str | Path, name: str = "", kind: str = "search") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.name = name or self.folder.name
        self.kind = kind    # what the folder holds, for the message: a search, or a campaign
        self._fd: int | None = None

    def acquire(self) -> "SearchLock":
        """Take the lock, or raise ``SearchBusy`` naming the process that holds it (touching nothing)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise CheckpointError(f"cannot create the lock file {self.path} ({exc.strerror}); make the folder "
                                  "writable or set tracking.checkpoint_dir to another folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            other = "pick another --name" if self.kind == "search" else f"give the {self.kind} another name"
            raise SearchBusy(f"{self.kind} {self.name!r} is in use by {holder} (lock {self.path}); wait for it to end "
                             f"or stop it (Ctrl-C), or {other}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {' '.join([os.path.basename(sys.executable), *sys.argv])}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "SearchLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> str:
    """``process PID (COMMAND)`` from the holder's lock file; it may be empty for a moment while it is written."""
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    if len(command) > 100:
        command = command[:97] + "..."
    return f"process {pid} ({command})" if command else f"process {pid}"
