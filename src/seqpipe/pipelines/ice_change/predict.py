"""`seqpipe predict ice_change --before A.tif --after B.tif --output change.tif`."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqpipe.errors import SeqpipeError
from seqpipe.params import Params
from seqpipe.data import seaice
from seqpipe.pipelines.ice_change.evaluate import EvaluateParams
from seqpipe.pipelines.ice_change.preprocess import pair_inputs
from seqpipe.pipelines.ice_change.pairs import NOT_EVALUATED


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> Path:
    """uint8 change map on A's grid: 1 changed, 0 unchanged, 255 (nodata) on flagged pixels."""
    if args.before is None or args.after is None:
        raise SeqpipeError(f"predict {args.model}: --before and --after are required")
    before_path, after_path, output = Path(args.before), Path(args.after), Path(args.output)
    (before, grid), (after, grid_b) = seaice.read_raw(before_path), seaice.read_raw(after_path)
    if (diff := grid_b.difference(grid)) is not None:
        raise SeqpipeError(f"{after_path}: {diff} (of --before {before_path.name}); the two dates must share one grid")
    maps, valid = pair_inputs(before, after)
    with torch.inference_mode():
        logits = network(torch.from_numpy(maps[None])).numpy()[0]
    threshold = params.section("ice_change", "evaluate", EvaluateParams).threshold
    change = logits >= np.log(threshold / (1 - threshold))
    out = np.where(valid, change, NOT_EVALUATED).astype(np.uint8)
    seaice.write_geotiff(output, out, grid, nodata=NOT_EVALUATED, descriptions=["change"])
    return output
