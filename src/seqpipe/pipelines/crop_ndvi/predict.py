"""`seqpipe predict crop_ndvi --input DIR --output next_ndvi.tif`: next-NDVI map from a stack's latest dates."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqpipe.errors import SeqpipeError
from seqpipe.data.series import Standardizer
from seqpipe.data.rasters import geotiff_profile, geotiff_writer, iter_windows
from seqpipe.networks import predict_batches
from seqpipe.pipelines.crop_ndvi.download import DownloadParams
from seqpipe.pipelines.crop_ndvi.preprocess import PreprocessParams, Stack, fill_short_gaps, read_scenes, to_grid
from seqpipe.params import Params
from seqpipe.stages.predict import require_input
from seqpipe.data.sentinel2 import INDEX, StackLayout, find_scenes

NODATA = -9999.0


def latest_scenes(folder: Path, layout: StackLayout, window: int, max_gap: int, grid_days: int) -> list[dict]:
    """The dates within the last window + max_gap grid steps (scenes.json if present, else the layout
    that params.yaml's download.local describes)."""
    scenes = read_scenes(folder) if (folder / INDEX).exists() else find_scenes(folder, layout)
    dates = pd.to_datetime([s["date"] for s in scenes])
    keep = [s for s, d in zip(scenes, dates) if (dates[-1] - d).days <= (window + max_gap) * grid_days]
    return keep


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> Path:
    """Forecast the NDVI one grid step after the input's last date for every pixel with a valid window."""
    folder, output = require_input(args), Path(args.output)
    if not folder.is_dir():
        raise SeqpipeError(f"{folder}: not a folder (crop_ndvi predicts from a folder of GeoTIFFs)")
    stats = payload["stats"]
    layout = params.section("crop_ndvi", "download", DownloadParams).local
    preprocess = params.section("crop_ndvi", "preprocess", PreprocessParams)
    scaler = Standardizer.from_dict(stats["scaler"])
    window, grid_days, max_gap = stats["window"], stats["grid_days"], stats["max_gap_steps"]
    scenes = latest_scenes(folder, layout, window, max_gap, grid_days)
    with Stack(folder, scenes, stats["mask_scl"], preprocess.reproject) as stack:
        before_last = np.round((stack.dates[-1] - stack.dates).days.to_numpy() / grid_days).astype(int)
        steps = before_last.max() - before_last
        if steps.max() + 1 < window:
            raise SeqpipeError(f"{folder}: the latest dates span {steps.max() + 1} grid steps of {grid_days} days; "
                               f"the model needs {window}")
        last, block = stack.dates[-1], preprocess.block_size
        tags = {"MODEL": "crop_ndvi", "LAST_INPUT_DATE": last.strftime("%Y-%m-%d"),
                "FORECAST_DATE": (last + pd.Timedelta(days=grid_days)).strftime("%Y-%m-%d")}
        with geotiff_writer(output, geotiff_profile(stack.grid, "float32", NODATA), tags) as dst:
            for win in iter_windows(stack.grid.height, stack.grid.width, stack.window_size(block)):
                series = to_grid(stack.ndvi(win), steps)
                filled = fill_short_gaps(series, max_gap)[-window:].reshape(window, -1)
                valid = ~np.isnan(filled).any(0) & ~np.isnan(series[-1].ravel())
                out = np.full(filled.shape[1], NODATA, np.float32)
                if valid.any():
                    x = torch.from_numpy(scaler.transform(filled[:, valid].T[..., None]))
                    y = predict_batches(network, x, 8192)[:, 0]
                    out[valid] = scaler.inverse(y)
                dst.write(out.reshape(int(win.height), int(win.width)), 1, window=win)
            stack.check_ndvi_range()   # a wrong DN offset: refused before the output replaces anything
    return output
