"""ice_forecast preprocess: daily maps stored once; (history_days of history, next horizon_days) windows cut
from them on demand (seqpipe.data.windows), their starts split by date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from rasterio.errors import CRSError

from seqpipe.data import seaice
from seqpipe.data.rasters import Grid
from seqpipe.data.series import chronological_split, save_splits
from seqpipe.data.windows import cut, stored_arrays
from seqpipe.errors import SeqpipeError
from seqpipe.params import Range, SplitFraction, params_section

GAP_KEY = "models.ice_forecast.preprocess.max_gap_days"


@params_section
class PreprocessParams:
    history_days: Annotated[int, Range(2, 366)]
    horizon_days: Annotated[int, Range(1, 366)]
    # block-mean factor applied to the 25 km grid (2 -> 50 km cells)
    downsample: Annotated[int, Range(1, 64)]
    sample_stride_days: Annotated[int, Range(1, 366)]   # days between the starts of consecutive windows
    max_gap_days: Annotated[int, Range(0, 60)]          # missing days in a row filled in time; more: refused
    val_fraction: SplitFraction
    test_fraction: SplitFraction


def coarse_maps(series: seaice.Series, factor: int) -> dict[str, np.ndarray]:
    """Filled concentration, observed and ocean masks of a series, block-averaged by `factor`."""
    concentration, observed, ocean, flags = seaice.series_arrays(series)
    ocean_f = ocean.astype(np.float32)
    ocean_c = seaice.block_mean(ocean_f, np.ones_like(ocean_f), factor) >= 0.5
    return {"concentration": seaice.block_mean(concentration, ocean_f, factor),
            "observed": (seaice.block_mean(observed.astype(np.float32), ocean_f, factor) >= 0.5) & ocean_c,
            "ocean": ocean_c, "native_concentration": concentration, "native_flags": flags}


def cell_area_km2(grid: Grid, factor: int, source: Path) -> float:
    """The area of one preprocessed cell (factor x factor native pixels) in km^2, from the grid's transform
    and its CRS's linear unit (625 km^2 per native pixel on the 25 km G02135 grids)."""
    try:
        _, metres = grid.crs.linear_units_factor
    except CRSError as err:   # a geographic CRS has no linear unit
        raise SeqpipeError(f"{source}: CRS {grid.crs} is not projected; cell areas need "
                           "a linear unit") from err
    t = grid.transform
    return float(abs(t.a * t.e - t.b * t.d) * metres**2 * factor**2 / 1e6)


def preprocess(p: PreprocessParams, seed: int, raw_dir: Path, out_dir: Path) -> dict:
    series = seaice.read_series(raw_dir, max_gap_days=p.max_gap_days, gap_key=GAP_KEY)
    if p.downsample > min(series.grid.shape):
        raise SeqpipeError(f"models.ice_forecast.preprocess.downsample: {p.downsample} x {p.downsample} "
                           f"blocks leave no cell of the {series.grid.height}x{series.grid.width} grid of "
                           f"{raw_dir}; use at most {min(series.grid.shape)}")
    maps = coarse_maps(series, p.downsample)
    conc, observed = maps["concentration"], maps["observed"]
    span = p.history_days + p.horizon_days
    ranges = chronological_split(len(conc), p.val_fraction, p.test_fraction)
    doy = np.array([d.timetuple().tm_yday for d in series.dates], dtype=np.int16)
    starts, split_dates = {}, {}
    for split, days in ranges.items():
        starts[split] = np.arange(days.start, days.stop - span + 1, p.sample_stride_days, dtype=np.int64)
        if len(starts[split]) < 2:
            raise SeqpipeError(f"{raw_dir}: the {split} split ({days.stop - days.start} days) holds fewer "
                               f"than 2 windows of {span} days; add days or lower history_days/horizon_days")
        split_dates[split] = [series.dates[days.start].isoformat(), series.dates[days.stop - 1].isoformat()]
    # each day stored once; a window is history_days maps from its start, then the horizon_days after them
    stored = {"concentration": conc, "observed": observed, "day_of_year": doy}
    after, horizon = p.history_days, p.horizon_days
    windows = {"x": cut("concentration", 0, p.history_days, dtype="float16"),
               "y": cut("concentration", after, horizon), "mask": cut("observed", after, horizon),
               "doy": cut("day_of_year", after, horizon)}
    present = sum(d is not None for d in series.days)
    return {"history_days": p.history_days, "horizon_days": p.horizon_days, "downsample": p.downsample,
            "max_gap_days": p.max_gap_days,
            "map_shape": list(conc.shape[1:]), "native_shape": list(series.grid.shape),
            "crs": series.grid.crs.to_string(), "transform": list(series.grid.transform)[:6],
            "cell_area_km2": cell_area_km2(series.grid, p.downsample, raw_dir),
            "days": len(series.days), "files": present, "missing_days": len(series.days) - present,
            "first_day": series.dates[0].isoformat(), "ocean_fraction": float(maps["ocean"].mean()),
            "split_dates": split_dates, "windows": windows,
            "arrays": save_splits(out_dir, stored_arrays(stored, starts))}
