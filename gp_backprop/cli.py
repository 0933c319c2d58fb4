"""Shared command-line plumbing: an argparse parser whose errors are one line with a suggestion, exit code 2."""
from __future__ import annotations

import argparse
import difflib
import sys
from typing import NoReturn


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
