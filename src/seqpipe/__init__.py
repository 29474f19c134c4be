"""seqpipe: a DVC-run, data-versioned training pipeline for time-series and raster models."""

__version__ = "0.1.0"


class SeqpipeError(Exception):
    """An error a user can act on; the CLI prints it as one line and exits non-zero."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
