"""`seqpipe predict ice_type`: one GeoTIFF patch or a folder of them -> class and probabilities per file.

`predict_array` is the array core (`seqpipe.load("ice_type").predict`); `predict` reads the patches,
calls it and writes the CSV.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqpipe.errors import SeqpipeError
from seqpipe.networks import predict_batches
from seqpipe.params import Params
from seqpipe.pipelines.ice_type import IceTypeStats
from seqpipe.pipelines.ice_type.preprocess import read_patches, standardize
from seqpipe.plotting import write_csv
from seqpipe.spec import IODescription
from seqpipe.stages.predict import PredictInputError, as_array, require_finite_computed, require_range

SUFFIXES = (".tif", ".tiff")
INPUTS = ("patches: one patch [bands, size, size] or a batch [n, bands, size, size] of raw band values "
          "(stats['bands'], stats['patch_size'], as the training GeoTIFFs hold them) -> (class indices [n], "
          "probabilities [n, classes]) (no n axis for one patch); names in .classes (stats['classes'])")


def predict_array(network: nn.Module, payload: dict, patches: Any) -> tuple[np.ndarray, np.ndarray]:
    """(index of the most probable class, softmax probabilities per class) for each patch."""
    stats: IceTypeStats = payload["stats"]
    shape = (stats["bands"], stats["patch_size"], stats["patch_size"])
    expected = f"one patch {list(shape)} (bands, size, size) or a batch [n, {', '.join(map(str, shape))}]"
    x = as_array(patches, "patches", expected, (3, 4), None)
    single = x.ndim == 3
    x = x[None] if single else x
    if x.shape[1:] != shape:
        raise PredictInputError(f"patches: shape {x.shape if not single else x.shape[1:]}; "
                                f"expected {expected}")
    require_range(x, "patches")
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = standardize(x, stats)
    require_finite_computed(scaled, x, "patches", "standardised with the training bands' mean and std")
    logits = predict_batches(network, torch.from_numpy(scaled), 256)
    probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    index = probs.argmax(axis=1)
    return (index[0], probs[0]) if single else (index, probs)


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> str:
    """Output columns: file, predicted, then p_<class> (softmax) for every class."""
    input_path, output_path = Path(args.input), args.output
    stats: IceTypeStats = payload["stats"]
    if input_path.is_dir():
        paths = sorted(p for p in input_path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not paths:
            raise SeqpipeError(f"{input_path}: no .tif/.tiff files in this folder")
    else:
        paths = [input_path]
    shape = (stats["bands"], stats["patch_size"], stats["patch_size"])
    index, probs = predict_array(network, payload, read_patches(paths, shape)[0])
    classes = stats["classes"]
    names = [p.relative_to(input_path).as_posix() if input_path.is_dir() else p.name for p in paths]
    write_csv(output_path, {"file": names, "predicted": [classes[k] for k in index],
                            **{f"p_{c}": probs[:, k] for k, c in enumerate(classes)}}, float_format="%.4f")
    counts = np.bincount(index, minlength=len(classes))
    return (f"wrote {output_path}: {len(paths)} patch{'es' if len(paths) > 1 else ''} classified: "
            f"{', '.join(f'{n} {c}' for c, n in zip(classes, counts, strict=True))}; nothing masked")


def describe_io(stats: IceTypeStats, x: str, y: str) -> IODescription:
    """What the exported network reads and returns (`seqpipe export`), `x` and `y` its shapes."""
    return IODescription(
        [f"band_{i + 1}" for i in range(stats["bands"])], stats["classes"], None,
        {"mean": stats["band_mean"], "std": stats["band_std"], "axis": 1},
        x=f"{x} = (batch, bands, patch rows, patch columns); each band standardised: "
          "(raw - scaler.mean[band]) / scaler.std[band]",
        y=f"{y} = (batch, classes) logits; softmax gives the class probabilities")
