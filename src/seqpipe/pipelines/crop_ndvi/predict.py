"""`seqpipe predict crop_ndvi --input DIR --output next_ndvi.tif`: next-NDVI map from a stack's latest dates.

`next_ndvi` is the array core: `seqpipe.load("crop_ndvi").predict` calls it on a whole NDVI stack,
`predict` on each block of a folder of GeoTIFFs, which it writes as one GeoTIFF.

A pixel gets a forecast only with a complete window, as in training: each of the last `window` grid
steps observed or inside a gap of at most `max_gap_steps` steps between observations (interpolated),
and the last step observed (cloud, shadow and the other `mask_scl` classes, zero, saturated and
nodata DN count as not observed; so does a grid step without a scene).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqpipe.data.rasters import geotiff_profile, geotiff_writer, iter_windows
from seqpipe.data.sentinel2 import INDEX, StackLayout, find_scenes, read_scenes
from seqpipe.data.series import RangeCheck, Standardizer, window_io
from seqpipe.errors import SeqpipeError
from seqpipe.networks import predict_batches
from seqpipe.params import Params
from seqpipe.pipelines.crop_ndvi import CropStats
from seqpipe.pipelines.crop_ndvi.download import DownloadParams
from seqpipe.pipelines.crop_ndvi.preprocess import PreprocessParams, Stack, fill_short_gaps, to_grid
from seqpipe.spec import IODescription
from seqpipe.stages.predict import (
    PredictInputError,
    as_array,
    range_check,
    require_range,
    warn_outside_training,
)

NODATA = -9999.0
INPUTS = ("ndvi: an NDVI stack [steps, H, W] on the training date grid (one map per stats['grid_days'] days, "
          "oldest first), NaN where masked (cloud, shadow, no scene that step); at least stats['window'] "
          "steps -> the NDVI map [H, W] one grid step after the last, NaN where a pixel has no complete "
          "window (the last step masked, or a gap longer than stats['max_gap_steps'] steps in the window)")


def next_ndvi(network: nn.Module, payload: dict, series: np.ndarray, ranges: RangeCheck | None = None
              ) -> np.ndarray:
    """(steps, ...) gridded NDVI, NaN where not observed -> (...) float32 forecast, NaN without a window.
    `ranges` (if given) counts the forecast pixels whose window leaves the training range."""
    stats: CropStats = payload["stats"]
    window, max_gap = stats["window"], stats["max_gap_steps"]
    filled = fill_short_gaps(series, max_gap)[-window:].reshape(window, -1)
    valid = ~np.isnan(filled).any(0) & ~np.isnan(series[-1].ravel())
    out = np.full(filled.shape[1], np.nan, np.float32)
    if ranges is not None:
        ranges.add("input", filled[:, valid].T[..., None])
    if valid.any():
        scaler = Standardizer.from_dict(stats["scaler"])
        x = torch.from_numpy(scaler.transform(filled[:, valid].T[..., None]))
        out[valid] = scaler.inverse(predict_batches(network, x, 8192)[:, 0])
    return out.reshape(series.shape[1:])


def predict_array(network: nn.Module, payload: dict, ndvi: Any) -> np.ndarray:
    """The NDVI one grid step after the stack's last map (see INPUTS)."""
    window = payload["stats"]["window"]
    series = as_array(ndvi, "ndvi",
                      f"an NDVI stack [steps, H, W] (at least {window} steps, NaN where masked)",
                      (3,), np.float32)
    if len(series) < window:
        raise PredictInputError(f"ndvi: {len(series)} grid steps (shape {series.shape}); the model "
                                f"needs at least {window} (one map per {payload['stats']['grid_days']} days)")
    require_range(series, "ndvi", -1.0, 1.0, nan_ok=True)
    ranges = range_check(payload, ["ndvi"])
    out = next_ndvi(network, payload, series, ranges)
    warn_outside_training(ranges, payload, "ndvi")
    return out


def latest_scenes(folder: Path, layout: StackLayout, window: int, max_gap: int, grid_days: int) -> list[dict]:
    """The dates within the last window + max_gap grid steps (scenes.json if present, else the layout
    that params.yaml's download.local describes)."""
    scenes = read_scenes(folder) if (folder / INDEX).exists() else find_scenes(folder, layout)
    dates = pd.to_datetime([s["date"] for s in scenes])
    keep = [s for s, d in zip(scenes, dates, strict=True)
            if (dates[-1] - d).days <= (window + max_gap) * grid_days]
    return keep


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> str:
    """Forecast the NDVI one grid step after the input's last date for every pixel with a valid window."""
    folder, output = Path(args.input), Path(args.output)
    if not folder.is_dir():
        raise SeqpipeError(f"{folder}: not a folder (crop_ndvi predicts from a folder of GeoTIFFs)")
    stats: CropStats = payload["stats"]
    layout = params.section("crop_ndvi", "download", DownloadParams).local
    preprocess = params.section("crop_ndvi", "preprocess", PreprocessParams)
    window, grid_days, max_gap = stats["window"], stats["grid_days"], stats["max_gap_steps"]
    scenes = latest_scenes(folder, layout, window, max_gap, grid_days)
    with Stack(folder, scenes, stats["mask_scl"], preprocess.reproject) as stack:
        before_last = np.round((stack.dates[-1] - stack.dates).days.to_numpy() / grid_days).astype(int)
        steps = before_last.max() - before_last
        if steps.max() + 1 < window:
            raise SeqpipeError(f"{folder}: the latest dates span {steps.max() + 1} grid steps of "
                               f"{grid_days} days; the model needs {window}")
        last, block = stack.dates[-1], preprocess.block_size
        tags = {"MODEL": "crop_ndvi", "LAST_INPUT_DATE": last.strftime("%Y-%m-%d"),
                "FORECAST_DATE": (last + pd.Timedelta(days=grid_days)).strftime("%Y-%m-%d")}
        forecast = last_masked = 0
        ranges = range_check(payload, ["ndvi"])
        with geotiff_writer(output, geotiff_profile(stack.grid, "float32", NODATA), tags) as dst:
            for win in iter_windows(stack.grid.height, stack.grid.width, stack.window_size(block)):
                series = to_grid(stack.ndvi(win), steps)
                out = next_ndvi(network, payload, series, ranges)
                forecast += int((~np.isnan(out)).sum())
                last_masked += int(np.isnan(series[-1]).sum())
                dst.write(np.where(np.isnan(out), np.float32(NODATA), out), 1, window=win)
            stack.check_ndvi_range()   # a wrong DN offset: refused before the output replaces anything
        warn_outside_training(ranges, payload, str(folder))
        width, height = stack.grid.width, stack.grid.height
        gap = width * height - forecast - last_masked
        first = last - pd.Timedelta(days=(window - 1) * grid_days)
        on_grid = set(steps[steps > steps.max() - window].tolist())
        no_scene = [(last - pd.Timedelta(days=int(steps.max() - s) * grid_days)).strftime("%Y-%m-%d")
                    for s in range(steps.max() - window + 1, steps.max() + 1) if s not in on_grid]
        why = [f"{last_masked} masked (cloud, shadow or no data) on the last date {last:%Y-%m-%d}"
               if last_masked else "",
               f"{gap} with a gap over {max_gap} grid steps ({max_gap * grid_days} days) in the "
               f"{window}-step window {first:%Y-%m-%d}..{last:%Y-%m-%d}"
               + (f", which has no scene on {', '.join(no_scene)}" if no_scene else "")
               if gap else ""]
        why_text = "; ".join(w for w in why if w)
    return (f"wrote {output}: {width}x{height} pixels, {forecast} forecast for {tags['FORECAST_DATE']}, "
            f"{width * height - forecast} nodata" + (f" ({why_text})" if why_text else ""))


def describe_io(stats: CropStats, x: str, y: str) -> IODescription:
    """What the exported network reads and returns (`seqpipe export`), `x` and `y` its shapes."""
    return window_io(stats, [0], x, y, {"ndvi": "NDVI (unitless, -1..1)"})
