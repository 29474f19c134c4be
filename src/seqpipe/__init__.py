"""seqpipe: a DVC-run, data-versioned training pipeline for time-series and raster models."""

__version__ = "0.1.0"


class SeqpipeError(Exception):
    """An error a user can act on; the CLI prints it as one line and exits non-zero."""
