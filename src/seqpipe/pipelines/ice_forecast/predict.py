"""`seqpipe predict ice_forecast --input DIR --output forecast.tif`: the next days after DIR's last map.

`forecast` is the network step both callers share; `predict_array` (`seqpipe.load("ice_forecast")
.predict`) takes concentration maps in percent, `predict` reads a folder of daily G02135 GeoTIFFs
and writes the forecast GeoTIFF.
"""

from __future__ import annotations

import datetime as dt
from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqpipe.data import seaice
from seqpipe.errors import SeqpipeError
from seqpipe.params import Params
from seqpipe.pipelines.ice_forecast import IceForecastStats
from seqpipe.spec import IODescription
from seqpipe.stages.predict import PredictInputError, as_array, require_range

INPUTS = ("maps: daily concentration maps [days, H, W] in percent (0..100), oldest first, NaN where there is "
          "no value (a missing day: all NaN); the last stats['history_days'] days are used, at least half of "
          "them with values and at most stats['max_gap_days'] missing in a row; a pixel without a "
          "value on any day is land (no forecast); give the pole hole as 100 (ice, as in training) -> "
          "[leads, H, W] percent (stats['horizon_days'] leads), NaN on land")


def forecast(network: nn.Module, payload: dict, concentration: np.ndarray, ocean: np.ndarray) -> np.ndarray:
    """(days, H, W) filled concentration fractions (land 0, pole hole 1) + (H, W) ocean mask ->
    (leads, H, W) fractions in [0, 1].

    The network forecasts on the training resolution (block means over ocean pixels); its change
    from the last map is upsampled (bilinear) onto the input grid and added to the last input map.
    The maps are padded with land to a multiple of downsample x patch first.
    """
    factor, patch = payload["stats"]["downsample"], payload["network_args"]["patch"]
    height, width = ocean.shape
    pad = ((0, -height % (factor * patch)), (0, -width % (factor * patch)))
    native = np.pad(concentration, ((0, 0), *pad), constant_values=0.0)
    weights = np.pad(ocean, pad, constant_values=False).astype(np.float32)
    coarse_in = seaice.block_mean(native, weights, factor)
    with torch.inference_mode():
        coarse = network(torch.from_numpy(coarse_in[None])).numpy()[0]
    delta = torch.from_numpy(coarse - coarse_in[-1])[None]
    delta = F.interpolate(delta, size=native.shape[1:], mode="bilinear", align_corners=False).numpy()[0]
    return np.clip(native[-1] + delta, 0.0, 1.0)[:, :height, :width]


def predict_array(network: nn.Module, payload: dict, maps: Any) -> np.ndarray:
    """Concentration forecast in percent for the days after the last map (see INPUTS)."""
    history = payload["stats"]["history_days"]
    conc = as_array(maps, "maps", "daily concentration maps [days, H, W] in percent (0..100, NaN "
                    "where no value)",
                    (3,))
    if len(conc) < history:
        raise PredictInputError(f"maps: {len(conc)} days; the model reads the last {history} (shape "
                                f"{conc.shape})")
    require_range(conc, "maps", 0.0, 100.0, nan_ok=True, unit=" percent")
    first = len(conc) - history   # the index in `maps` of the first day read
    conc = (conc[-history:] / 100.0).astype(np.float32)
    days_with_value = np.isfinite(conc).any(axis=(1, 2))
    present = int(days_with_value.sum())
    if present < (history + 1) // 2:
        raise PredictInputError(f"maps: only {present} of the last {history} days hold a value; "
                                f"need at least {(history + 1) // 2}")
    _require_short_gaps(days_with_value, first, payload["stats"].get("max_gap_days"))
    ocean = np.isfinite(conc).any(axis=0)
    conc[:, ~ocean] = 0.0
    out = forecast(network, payload, seaice.fill_in_time(conc), ocean) * 100.0
    return np.where(ocean, out, np.nan).astype(np.float32)


def _require_short_gaps(days_with_value: np.ndarray, first: int, max_gap_days: int | None) -> None:
    """Refuse more than `max_gap_days` days in a row without a value among the days read (they would be
    filled in time, as preprocess fills at most that many); None (an older model file): no cap."""
    if max_gap_days is None:
        return
    start = None
    for k, has_value in enumerate([*days_with_value, True]):
        if not has_value and start is None:
            start = k
        elif has_value and start is not None:
            if k - start > max_gap_days:
                raise PredictInputError(f"maps: days {first + start}..{first + k - 1} hold no value, "
                                        f"{k - start} in a row; the model fills at most {max_gap_days} "
                                        "missing days in time (stats['max_gap_days'])")
            start = None


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> str:
    """A band per lead day (uint16 concentration x10, G02135 coding) on the input's grid; pole hole,
    coast and land keep their flag values and are masked as nodata."""
    folder, output = Path(args.input), Path(args.output)
    if not folder.is_dir():
        raise SeqpipeError(f"{folder}: --input must be a folder of daily G02135 GeoTIFFs")
    history = payload["stats"]["history_days"]
    series = seaice.read_series(folder, last_days=history, max_gap_days=payload["stats"].get("max_gap_days"),
                                gap_key="stats['max_gap_days'] of the model file")
    present = int(series.present.sum())
    if present < (history + 1) // 2:
        raise SeqpipeError(f"{folder}: only {present} of the last {history} days have a file "
                           f"(ending {series.dates[-1]}); need at least {(history + 1) // 2}")
    concentration, _, ocean, flags = seaice.series_arrays(series)
    bands = np.stack([seaice.encode(f, flags) for f in forecast(network, payload, concentration, ocean)])
    last = series.dates[-1]
    names = [f"lead_{k + 1} {last + dt.timedelta(days=k + 1)}" for k in range(len(bands))]
    seaice.write_geotiff(output, bands, series.grid, valid=flags == 0, descriptions=names)
    reasons = [(int((flags == code).sum()), what) for code, what in
               ((seaice.LAND, "land"), (seaice.COAST, "coast"), (seaice.POLE_HOLE, "pole hole"))]
    why = ", ".join(f"{n} {what}" for n, what in reasons if n)
    gaps = (f"; {history - present} of the {history} input days had no file (filled in time)"
            if present < history else "")
    return (f"wrote {output}: {len(bands)} lead days ({last + dt.timedelta(days=1)} to "
            f"{last + dt.timedelta(days=len(bands))}) on {flags.shape[1]}x{flags.shape[0]} pixels, "
            f"{int((flags == 0).sum())} forecast, {int((flags != 0).sum())} nodata"
            + (f" ({why})" if why else "")
            + gaps)


def describe_io(stats: IceForecastStats, x: str, y: str) -> IODescription:
    """What the exported network reads and returns (`seqpipe export`), `x` and `y` its shapes."""
    leads = [f"lead_day_{k + 1}" for k in range(stats["horizon_days"])]
    return IODescription(
        ["sea_ice_concentration"], leads, stats["history_days"], None,
        x=f"{x} = (batch, past days oldest first, rows, columns) sea-ice concentration, fraction 0..1 "
          f"on the training grid ({stats.get('crs')}, downsampled x{stats.get('downsample')})",
        y=f"{y} = (batch, lead days, rows, columns) forecast concentration, fraction 0..1",
        units={c: "fraction 0..1" for c in ["sea_ice_concentration", *leads]})
