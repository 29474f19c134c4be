"""`seqpipe predict ice_forecast --input DIR --output forecast.tif`: the next days after DIR's last map."""

from __future__ import annotations

import datetime as dt
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqpipe.errors import SeqpipeError
from seqpipe.data import seaice
from seqpipe.pipelines.ice_forecast.preprocess import coarse_maps
from seqpipe.params import Params
from seqpipe.stages.predict import require_input


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> Path:
    """A band per lead day (uint16 concentration x10, G02135 coding) on the input's grid.

    The network forecasts on the training resolution; its change from the last map is upsampled
    (bilinear) onto the input grid and added to the last full-resolution map. Pole hole, coast and
    land keep their flag values and are masked as nodata.
    """
    folder, output = require_input(args), Path(args.output)
    if not folder.is_dir():
        raise SeqpipeError(f"{folder}: --input must be a folder of daily G02135 GeoTIFFs")
    stats = payload["stats"]
    history, factor, patch = stats["history_days"], stats["downsample"], payload["network_args"]["patch"]
    series = seaice.read_series(folder, last_days=history)
    present = sum(d is not None for d in series.days)
    if present < (history + 1) // 2:
        raise SeqpipeError(f"{folder}: only {present} of the last {history} days have a file "
                           f"(ending {series.dates[-1]}); need at least {(history + 1) // 2}")
    maps = coarse_maps(_padded(series, factor * patch), factor)
    with torch.inference_mode():
        coarse = network(torch.from_numpy(maps["concentration"][None])).numpy()[0]
    delta = torch.from_numpy(coarse - maps["concentration"][-1])[None]
    native_shape = maps["native_concentration"].shape[1:]
    delta = F.interpolate(delta, size=native_shape, mode="bilinear", align_corners=False).numpy()[0]
    forecast = np.clip(maps["native_concentration"][-1] + delta, 0.0, 1.0)
    height, width = series.grid.shape
    flags = maps["native_flags"][:height, :width]
    bands = np.stack([seaice.encode(f[:height, :width], flags) for f in forecast])
    last = series.dates[-1]
    names = [f"lead_{k + 1} {last + dt.timedelta(days=k + 1)}" for k in range(len(bands))]
    seaice.write_geotiff(output, bands, series.grid, valid=flags == 0, descriptions=names)
    return output


def _padded(series: seaice.Series, multiple: int) -> seaice.Series:
    """The series with land rows/columns appended so both sides are multiples of `multiple`."""
    height, width = series.grid.shape
    pad = ((0, -height % multiple), (0, -width % multiple))
    if pad == ((0, 0), (0, 0)):
        return series
    days = [None if d is None else np.pad(d, pad, constant_values=seaice.LAND) for d in series.days]
    grid = seaice.Grid(series.grid.crs, series.grid.transform, width + pad[1][1], height + pad[0][1])
    return seaice.Series(series.folder, series.start, days, grid)
