"""`seqpipe predict`: run a trained model on new input through its folder's `predict` module."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from seqpipe import checkpoint, layout
from seqpipe.errors import SeqpipeError
from seqpipe.params import Params
from seqpipe.spec import ModelSpec


def require_input(args: Namespace) -> Path:
    """The --input path, which this model's predict needs."""
    if args.input is None:
        raise SeqpipeError(f"predict {args.model}: --input is required")
    return Path(args.input)


def run(spec: ModelSpec, params: Params, args: Namespace) -> Path:
    """Load models/<model>/model.pt (or --model-file) and write the model's prediction for the input."""
    if not spec.has_stage("predict"):
        raise SeqpipeError(f"model {spec.name!r} has no predict command")
    for given in (args.input, args.before, args.after):
        if given is not None and not given.exists():
            raise SeqpipeError(f"{given}: not found")
    module = spec.stage("predict")
    network, payload = checkpoint.load_model(args.model_file or layout.model_file(spec.name), spec.name)
    return module.predict(network, payload, args, params)
