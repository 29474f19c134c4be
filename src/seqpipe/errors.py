"""The one error type a user sees: the CLI prints it as one line and exits non-zero."""

from __future__ import annotations


class SeqpipeError(Exception):
    """An error a user can act on; the CLI prints it as one line and exits with `exit_code` (default 1)."""

    exit_code: int = 1


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
