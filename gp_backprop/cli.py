"""Shared command-line plumbing: an argparse parser whose errors are one line with a suggestion, exit code 2."""
from __future__ import annotations

import argparse
import difflib
import math
import os
import signal
import sys
from typing import Any, NoReturn

WORKERS_PER_CORE = 4  # more worker processes than this per core only thrash memory (issue 15: 1000 ate 5 GB in 16 s)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``docker stop``), raised where Ctrl-C raises ``KeyboardInterrupt``: same graceful stop."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def stop_on_sigterm() -> None:
    """Turn SIGTERM into ``Terminated`` until the search loop installs its own graceful handler."""
    signal.signal(signal.SIGTERM, _terminated)


def interrupted_code(exc: KeyboardInterrupt) -> int:
    """The shell's exit code for a process stopped by the signal: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def check_workers(prog: str, workers: int, force: bool) -> None:
    """Refuse more than ``WORKERS_PER_CORE`` worker processes per core unless ``--force``: each one is a Python
    process with torch loaded (~300 MB), so a typo such as ``--workers 1000`` would swamp the machine."""
    cores = os.cpu_count() or 1
    if workers > WORKERS_PER_CORE * cores and not force:
        fail(prog, f"--workers {workers} is more than {WORKERS_PER_CORE} per CPU core ({cores} cores here), and each "
                   f"is a process of ~300 MB; use at most {WORKERS_PER_CORE * cores}, or add --force if you mean it")


def positive(kind: type) -> Any:
    """An argparse ``type`` accepting only positive, finite ``kind`` values (``--lr inf`` and ``--seeds 0`` are
    refused with a one-line error naming the flag)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n' if kind is int else ''} {kind.__name__}")
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def fail(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: error: <message>`` on one line of stderr and exit with code 2 (STYLE §9)."""
    print(f"{prog}: error: {message}".replace("\n", " "), file=sys.stderr)
    raise SystemExit(2)


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` with one-line errors that suggest the closest option (``--epoch`` -> ``--epochs``)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            words = [w.split("=")[0] for w in message.split(":", 1)[1].split() if w.startswith("-")]
            options = [o for a in self._actions for o in a.option_strings]
            close = difflib.get_close_matches(words[0], options, n=1) if words else []
            if close:
                message += f"; did you mean {close[0]}?"
        fail(self.prog.split()[-1].rsplit(".", 1)[-1], f"{message} (see --help)")
