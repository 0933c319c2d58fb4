"""The one-line form of an exception, for statuses and user messages: every layer of the search reports errors so."""
from __future__ import annotations

__all__ = ["first_line"]


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its class name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
