"""`seqpipe predict ice_change --before A.tif --after B.tif --output change.tif`.

`predict_array` is the array core (`seqpipe.load("ice_change").predict`); `predict` reads the two
G02135 GeoTIFFs, calls the same network step and writes the change GeoTIFF.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqpipe.data import seaice
from seqpipe.errors import SeqpipeError
from seqpipe.params import Params
from seqpipe.pipelines.ice_change import IceChangeStats
from seqpipe.pipelines.ice_change.evaluate import EvaluateParams
from seqpipe.pipelines.ice_change.pairs import NOT_EVALUATED
from seqpipe.pipelines.ice_change.preprocess import pair_inputs
from seqpipe.spec import IODescription
from seqpipe.stages.predict import PredictInputError, as_array, check_real, require_range

INPUTS = ("before, after: two concentration maps [H, W] of one grid, in percent (0..100), NaN where there is "
          "no value (land, coast, missing); give the pole hole as 100 (ice, as in training) -> uint8 [H, W]: "
          f"1 changed, 0 unchanged, {NOT_EVALUATED} where either date has no value; threshold= (default: "
          "params.yaml's evaluate.threshold) is the change probability that counts as changed")


def defaults(params: Params) -> dict[str, Any]:
    """The keyword options `predict_array` takes from params.yaml: the change threshold."""
    return {"threshold": params.section("ice_change", "evaluate", EvaluateParams).threshold}


def change_map(network: nn.Module, maps: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """(2, H, W) filled concentration fractions + (H, W) valid -> uint8 change map (NOT_EVALUATED where
    invalid)."""
    with torch.inference_mode():
        logits = network(torch.from_numpy(maps[None])).numpy()[0]
    change = logits >= np.log(threshold / (1 - threshold))
    return np.where(valid, change, NOT_EVALUATED).astype(np.uint8)


def predict_array(network: nn.Module, payload: dict, before: Any, after: Any,
                  threshold: float = 0.5) -> np.ndarray:
    """Change map between two concentration maps in percent (see INPUTS)."""
    threshold = check_real(threshold, "threshold", 0.0, 1.0, "a probability strictly between 0 "
                           "and 1 (a float)")
    expected = "a concentration map [H, W] in percent (0..100, NaN where no value)"
    c1 = as_array(before, "before", expected, (2,))
    c2 = as_array(after, "after", expected, (2,))
    if c1.shape != c2.shape:
        raise PredictInputError(f"after: shape {c2.shape} differs from before's {c1.shape}; the two dates "
                                "must share one grid")
    for array, name in ((c1, "before"), (c2, "after")):
        require_range(array, name, 0.0, 100.0, nan_ok=True, unit=" percent")
    c1, c2 = (c1 / 100.0).astype(np.float32), (c2 / 100.0).astype(np.float32)
    valid = np.isfinite(c1) & np.isfinite(c2)
    c1, c2 = np.where(np.isnan(c1), c2, c1), np.where(np.isnan(c2), c1, c2)
    maps = np.nan_to_num(np.stack([c1, c2]), nan=0.0).astype(np.float32)   # no value on either date: as land
    return change_map(network, maps, valid, threshold)


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> str:
    """uint8 change map on A's grid: 1 changed, 0 unchanged, 255 (nodata) on flagged pixels."""
    before_path, after_path, output = Path(args.before), Path(args.after), Path(args.output)
    first, second = seaice.file_date(before_path), seaice.file_date(after_path)
    if first is not None and second is not None and second <= first:
        raise SeqpipeError(f"{after_path}: dated {second}, "
                           f"{'the same day as' if second == first else 'before'} --before "
                           f"{before_path.name} ({first}); --before takes the earlier date, "
                           "--after the later")
    (before, grid), (after, grid_b) = seaice.read_raw(before_path), seaice.read_raw(after_path)
    if (diff := grid_b.difference(grid)) is not None:
        raise SeqpipeError(f"{after_path}: {diff} (of --before {before_path.name}); the two dates must "
                           "share one grid")
    maps, valid = pair_inputs(before, after)
    threshold = defaults(params)["threshold"]
    out = change_map(network, maps, valid, threshold)
    seaice.write_geotiff(output, out, grid, nodata=NOT_EVALUATED, descriptions=["change"])
    return f"wrote {output}: {change_summary(out, before, after, threshold)}"


def change_summary(out: np.ndarray, before: np.ndarray, after: np.ndarray, threshold: float) -> str:
    """`HxW pixels, N changed, N unchanged, N nodata (why)` for a change map and its two raw code maps."""
    nodata = out == NOT_EVALUATED
    land = np.isin(before, (seaice.LAND, seaice.COAST)) | np.isin(after, (seaice.LAND, seaice.COAST))
    pole = ~land & ((before == seaice.POLE_HOLE) | (after == seaice.POLE_HOLE))
    reasons = [(int((nodata & land).sum()), "land or coast"), (int((nodata & pole).sum()), "pole hole"),
               (int((nodata & ~land & ~pole).sum()), "missing on a date")]
    why = ", ".join(f"{n} {what}" for n, what in reasons if n)
    return (f"{out.shape[1]}x{out.shape[0]} pixels, {int((out == 1).sum())} changed, {int((out == 0).sum())} "
            f"unchanged (threshold {threshold:g}), {int(nodata.sum())} nodata" + (f" ({why})" if why else ""))


def describe_io(stats: IceChangeStats, x: str, y: str) -> IODescription:
    """What the exported network reads and returns (`seqpipe export`), `x` and `y` its shapes."""
    return IODescription(
        ["concentration_before", "concentration_after"], ["change"], None, None,
        x=f"{x} = (batch, 2 dates [before, after], rows, columns) sea-ice concentration, fraction 0..1",
        y=f"{y} = (batch, rows, columns) change logits; sigmoid > threshold (evaluate.threshold) = changed",
        units={"concentration_before": "fraction 0..1", "concentration_after": "fraction 0..1"})
