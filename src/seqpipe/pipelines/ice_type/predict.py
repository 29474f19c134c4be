"""`seqpipe predict ice_type`: one GeoTIFF patch or a folder of them -> class and probabilities per file."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import torch
from torch import nn

from seqpipe.errors import SeqpipeError
from seqpipe.networks import predict_batches
from seqpipe.plotting import write_csv
from seqpipe.pipelines.ice_type.preprocess import read_patches, standardize
from seqpipe.params import Params
from seqpipe.stages.predict import require_input

SUFFIXES = (".tif", ".tiff")


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> Path:
    """Output columns: file, predicted, then p_<class> (softmax) for every class."""
    input_path, output_path = require_input(args), args.output
    stats = payload["stats"]
    if input_path.is_dir():
        paths = sorted(p for p in input_path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not paths:
            raise SeqpipeError(f"{input_path}: no .tif/.tiff files in this folder")
    else:
        paths = [input_path]
    shape = (stats["bands"], stats["patch_size"], stats["patch_size"])
    x = standardize(read_patches(paths, shape)[0], stats)
    logits = predict_batches(network, torch.from_numpy(x), 256)
    probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    classes = stats["classes"]
    names = [p.relative_to(input_path).as_posix() if input_path.is_dir() else p.name for p in paths]
    write_csv(output_path, {"file": names, "predicted": [classes[k] for k in probs.argmax(axis=1)],
                            **{f"p_{c}": probs[:, k] for k, c in enumerate(classes)}}, float_format="%.4f")
    return output_path
