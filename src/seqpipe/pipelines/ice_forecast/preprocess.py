"""ice_forecast preprocess: daily maps stored once; (history_days of history, next horizon_days) windows cut
from them on demand (seqpipe.data.windows), their starts split by date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from rasterio.errors import CRSError

from seqpipe.data import seaice
from seqpipe.data.rasters import Grid
from seqpipe.data.series import chronological_split, npy_record, save_splits
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


def coarse_maps(series: seaice.Series, factor: int, rows: slice = slice(None)) -> dict[str, np.ndarray]:
    """Filled concentration, observed and ocean masks of a series' native `rows` (all by default),
    block-averaged by `factor`; a band of rows starting on a multiple of `factor` gives exactly those
    blocks of the whole (every block is computed from its own pixels' days only)."""
    concentration, observed, ocean, flags = seaice.series_arrays(series, rows)
    ocean_f = ocean.astype(np.float32)
    ocean_c = seaice.block_mean(ocean_f, np.ones_like(ocean_f), factor) >= 0.5
    return {"concentration": seaice.block_mean(concentration, ocean_f, factor),
            "observed": (seaice.block_mean(observed.astype(np.float32), ocean_f, factor) >= 0.5) & ocean_c,
            "ocean": ocean_c, "native_concentration": concentration, "native_flags": flags}


# native cells (days x rows x columns) of one band of rows computed at a time: its temporaries (float32
# and int32 copies for decoding and filling in time) stay near 100 MB; the raw uint16 stack is held whole
BAND_CELLS = 1 << 22
STORED_DTYPES = {"concentration": np.float16, "observed": np.bool_}


def write_maps(series: seaice.Series, factor: int, out_dir: Path,
               band_cells: int = BAND_CELLS) -> tuple[np.ndarray, dict[str, dict]]:
    """concentration.npy (float16) and observed.npy (bool), (T, H // factor, W // factor) maps of
    coarse_maps, written into `out_dir` a band of rows at a time; (the coarse ocean mask, their
    save_splits records).

    float16 keeps every concentration G02135 can express (0.001 steps) to within a quarter step: its
    spacing below 1.0 is at most 2^-11. Each band is written through a memory map opened for it alone,
    so the pages written leave the process with it."""
    height, width = series.grid.shape
    days, out_h, out_w = len(series.present), height // factor, width // factor
    paths = {name: out_dir / f"{name}.npy" for name in STORED_DTYPES}
    for name, dtype in STORED_DTYPES.items():
        header = np.lib.format.open_memmap(paths[name], mode="w+", dtype=dtype, shape=(days, out_h, out_w))
        del header   # header and size written (unwritten pages are zeros); the bands fill it
    ocean = np.zeros((out_h, out_w), bool)
    band = max(1, band_cells // (days * factor * width))   # coarse rows per band
    for top in range(0, out_h, band):
        bottom = min(top + band, out_h)
        # the last band takes the native rows below the last whole block too (block_mean drops them)
        rows = slice(top * factor, bottom * factor if bottom < out_h else height)
        maps = coarse_maps(series, factor, rows)
        ocean[top:bottom] = maps["ocean"]
        for name, dtype in STORED_DTYPES.items():
            out = np.lib.format.open_memmap(paths[name], mode="r+")   # no pickles: a plain header
            out[:, top:bottom] = maps[name].astype(dtype)
            out.flush()
            del out
    return ocean, {name: npy_record(path) for name, path in paths.items()}


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
    ocean, records = write_maps(series, p.downsample, out_dir)
    n_days = len(series.present)
    span = p.history_days + p.horizon_days
    ranges = chronological_split(n_days, p.val_fraction, p.test_fraction)
    doy = np.array([d.timetuple().tm_yday for d in series.dates], dtype=np.int16)
    starts, split_dates = {}, {}
    for split, days in ranges.items():
        starts[split] = np.arange(days.start, days.stop - span + 1, p.sample_stride_days, dtype=np.int64)
        if len(starts[split]) < 2:
            raise SeqpipeError(f"{raw_dir}: the {split} split ({days.stop - days.start} days) holds fewer "
                               f"than 2 windows of {span} days; add days or lower history_days/horizon_days")
        split_dates[split] = [series.dates[days.start].isoformat(), series.dates[days.stop - 1].isoformat()]
    # each day stored once (concentration.npy, observed.npy written above); a window is history_days maps
    # from its start, then the horizon_days after them
    after, horizon = p.history_days, p.horizon_days
    windows = {"x": cut("concentration", 0, p.history_days, dtype="float16"),
               "y": cut("concentration", after, horizon, dtype="float32"),
               "mask": cut("observed", after, horizon), "doy": cut("day_of_year", after, horizon)}
    present = int(series.present.sum())
    records.update(save_splits(out_dir, stored_arrays({"day_of_year": doy}, starts)))
    return {"history_days": p.history_days, "horizon_days": p.horizon_days, "downsample": p.downsample,
            "max_gap_days": p.max_gap_days,
            "map_shape": list(ocean.shape), "native_shape": list(series.grid.shape),
            "crs": series.grid.crs.to_string(), "transform": list(series.grid.transform)[:6],
            "cell_area_km2": cell_area_km2(series.grid, p.downsample, raw_dir),
            "days": n_days, "files": present, "missing_days": n_days - present,
            "first_day": series.dates[0].isoformat(), "ocean_fraction": float(ocean.mean()),
            "split_dates": split_dates, "windows": windows, "arrays": dict(sorted(records.items()))}
