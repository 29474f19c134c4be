"""Small helpers shared by the models' predict commands."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from seqpipe import SeqpipeError


def require_input(args: Namespace) -> Path:
    """The --input path, which this model's predict needs."""
    if args.input is None:
        raise SeqpipeError(f"predict {args.model}: --input is required")
    return Path(args.input)
