"""Sea Ice Index (NSIDC G02135) daily concentration GeoTIFFs: grid checks, flag decoding, gap filling.

A file is `N_YYYYMMDD_concentration_v3.0.tif` (`S_` in the south; v4.0 too): one uint16 band on the
25 km polar stereographic grid of its hemisphere (EPSG:3411 north, EPSG:3412 south), concentration
x10 (0..1000) plus flag values for the pole hole, coast, land and missing data. Every reader checks
CRS, pixel grid and shape and names the file it rejects.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from seqpipe.data.rasters import Grid, geotiff_writer, many_files, nodata_mask, require_whole_read
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import require_file

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS
# rasterio is imported on use, inside the functions that read or write rasters.

POLE_HOLE, COAST, LAND, MISSING = 2510, 2530, 2540, 2550
FLAGS = (POLE_HOLE, COAST, LAND, MISSING)
EPSG = 3411
PIXEL_M = 25_000.0
NORTH_ORIGIN = (-3_850_000.0, 5_850_000.0)   # top-left corner of the 304 x 448 northern grid
NORTH_SHAPE = (448, 304)                      # rows, columns
# EPSG code -> top-left corner and (rows, columns) of that hemisphere's 25 km grid
ORIGINS = {EPSG: NORTH_ORIGIN, 3412: (-3_950_000.0, 4_350_000.0)}
SHAPES = {EPSG: NORTH_SHAPE, 3412: (332, 316)}
FILE_PATTERN = re.compile(r"^[NS]_(\d{8})_concentration_v(\d+\.\d+)\.tif$")
NAME_HINT = "N_YYYYMMDD_concentration_vX.Y.tif, S_ in the south"


def crs() -> CRS:
    """EPSG:3411, NSIDC Sea Ice Polar Stereographic North (Hughes 1980 ellipsoid)."""
    from rasterio.crs import CRS

    return CRS.from_epsg(EPSG)


def file_name(day: dt.date) -> str:
    return f"N_{day:%Y%m%d}_concentration_v3.0.tif"


def window_transform(row_off: int, col_off: int) -> Affine:
    """The transform of a sub-window of the northern grid whose top-left pixel is (row_off, col_off)."""
    from affine import Affine

    return Affine(PIXEL_M, 0.0, NORTH_ORIGIN[0] + col_off * PIXEL_M, 0.0, -PIXEL_M,
                  NORTH_ORIGIN[1] - row_off * PIXEL_M)


def check_g02135_grid(path: Path, grid: Grid) -> None:
    """EPSG:3411 (or 3412 in the south), north-up 25 km pixels aligned with that NSIDC grid, inside it."""
    epsg = grid.crs.to_epsg() if grid.crs is not None else None
    if epsg not in ORIGINS:
        found = grid.crs.to_string() if grid.crs else "none"
        raise SeqpipeError(f"{path}: CRS is {found}, expected EPSG:{EPSG} (NSIDC polar stereographic north) "
                           "or EPSG:3412 (south)")
    t = grid.transform
    if (t.a, t.b, t.d, t.e) != (PIXEL_M, 0.0, 0.0, -PIXEL_M):
        raise SeqpipeError(f"{path}: pixel size/rotation {t.a, t.b, t.d, t.e} is not the 25 km north-up grid")
    origin = ORIGINS[epsg]
    cols, rows = (t.c - origin[0]) / PIXEL_M, (origin[1] - t.f) / PIXEL_M
    if not (float(cols).is_integer() and float(rows).is_integer()):
        raise SeqpipeError(f"{path}: origin ({t.c}, {t.f}) is not on the NSIDC 25 km grid of EPSG:{epsg}")
    height, width = SHAPES[epsg]
    if rows < 0 or cols < 0 or rows + grid.height > height or cols + grid.width > width:
        raise SeqpipeError(f"{path}: {grid.width}x{grid.height} pixels from row {rows:.0f}, column "
                           f"{cols:.0f} reach beyond the {width}x{height} G02135 grid of EPSG:{epsg}")


def read_raw(path: Path) -> tuple[np.ndarray, Grid]:
    """The uint16 band of one G02135 file and its grid, both checked before the band is read (the size
    against the memory budget too). A pixel the file's own nodata value or mask marks is MISSING unless
    it holds a flag already."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(require_file(path)) as src:
            if src.count != 1 or src.dtypes[0] != "uint16":
                raise SeqpipeError(f"{path}: expected 1 uint16 band, found {src.count} x {src.dtypes[0]}")
            require_whole_read(path, src)
            grid = Grid.of(src)
            check_g02135_grid(path, grid)
            raw = src.read(1)
            raw = np.where(nodata_mask(src, 1, raw, path) & ~np.isin(raw, FLAGS), np.uint16(MISSING), raw)
    except RasterioError as exc:
        raise SeqpipeError(f"{path}: cannot read GeoTIFF ({first_line(exc)})") from None
    bad = (raw > 1000) & ~np.isin(raw, FLAGS)
    if bad.any():
        raise SeqpipeError(f"{path}: {int(bad.sum())} pixels hold values that are neither concentration "
                           f"(0..1000) nor a G02135 flag, e.g. {int(raw[bad][0])}")
    return raw, grid


def decode(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(concentration fraction 0..1 with NaN on every flag, ocean mask: not land or coast)."""
    concentration = np.where(raw <= 1000, raw.astype(np.float32) / 1000.0, np.float32(np.nan))
    ocean = (raw != LAND) & (raw != COAST)
    return concentration.astype(np.float32), ocean


@dataclass
class Series:
    """Daily maps on one calendar: the raw codes of the days with a file, stacked in date order."""

    folder: Path
    start: dt.date
    present: np.ndarray   # (T,) bool per calendar day: a file for that day
    codes: np.ndarray     # (present days, H, W) uint16 raw codes
    grid: Grid

    @property
    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(len(self.present))]

    def band(self, rows: slice) -> np.ndarray:
        """(T, rows, W) raw codes of every calendar day in `rows`, MISSING on each day without a file."""
        band = self.codes[:, rows]
        out = np.full((len(self.present), *band.shape[1:]), MISSING, np.uint16)
        out[self.present] = band
        return out


def file_date(path: Path) -> dt.date | None:
    """The date a G02135 file name carries; None for a name of another pattern. An impossible date in a
    G02135 name (N_20230230_...) is an error naming the file."""
    match = FILE_PATTERN.match(path.name)
    if not match:
        return None
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        raise SeqpipeError(f"{path}: invalid date in file name") from None


def list_files(folder: Path, ignore: tuple[str, ...] = ()) -> dict[dt.date, Path]:
    """The G02135 files of a folder by date; another .tif there (not in `ignore`) is an error."""
    files: dict[dt.date, Path] = {}
    for path in sorted(Path(folder).glob("*.tif")):
        if path.name in ignore:
            continue
        day = file_date(path)
        if day is None:
            raise SeqpipeError(f"{path}: not a G02135 name ({NAME_HINT})")
        if day in files:
            raise SeqpipeError(f"{path}: a second file for {day} (also {files[day].name})")
        files[day] = path
    if not files:
        raise SeqpipeError(f"{folder}: no G02135 concentration GeoTIFFs ({NAME_HINT})")
    return files


def read_series(folder: Path, last_days: int | None = None, max_gap_days: int | None = None,
                gap_key: str = "") -> Series:
    """Every daily file of `folder` (or the last `last_days` calendar days), all on one grid. With
    `max_gap_days`, more days in a row without a file (filled in time later) are refused first, naming
    the files on either side and `gap_key`, the param that sets the cap (see check_gaps)."""
    files = list_files(folder)
    end = max(files)
    start = min(files) if last_days is None else end - dt.timedelta(days=last_days - 1)
    if max_gap_days is not None:
        check_gaps(Path(folder), files, start, max_gap_days, gap_key)
    dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    present = np.array([day in files for day in dates], dtype=bool)
    codes: np.ndarray | None = None   # allocated once the first file gives the grid
    grid: Grid | None = None
    first: Path | None = None
    has_value = False
    with many_files():
        for k, day in enumerate(day for day in dates if day in files):
            path = files[day]
            raw, this = read_raw(path)
            if grid is None:
                grid, first = this, path
                codes = np.empty((int(present.sum()), *raw.shape), np.uint16)
            elif (diff := this.difference(grid)) is not None:
                assert first is not None   # set with `grid`
                raise SeqpipeError(f"{path}: {diff} (of {first.name}); every file must share one grid")
            assert codes is not None
            codes[k] = raw
            has_value = has_value or bool((raw <= 1000).any())
    assert grid is not None and codes is not None
    if not has_value:
        raise SeqpipeError(f"{folder}: no file holds a concentration value (every pixel of every "
                           "day is a flag such as 2550 missing)")
    return Series(Path(folder), start, present, codes, grid)


def check_gaps(folder: Path, files: dict[dt.date, Path], start: dt.date, max_gap_days: int,
               key: str = "") -> None:
    """Refuse a run of more than `max_gap_days` days without a file from `start` on: such days would be
    filled by interpolating in time (or, before the first file from `start`, by holding it), which is
    sound over a few days, not over a missing month or a stray file from another century."""
    dates = sorted(d for d in files if d >= start)
    cap = f"at most {max_gap_days} missing days in a row are filled in time" + (f" ({key})" if key else "")
    earlier = [d for d in files if d < start]
    if dates and not earlier and (dates[0] - start).days > max_gap_days:
        raise SeqpipeError(f"{folder}: no file for the {(dates[0] - start).days} days from {start} "
                           f"to the first, {files[dates[0]].name}; {cap}")
    previous = max(earlier) if earlier else None
    for day in dates:
        if previous is not None:
            absent = (day - max(previous + dt.timedelta(days=1), start)).days
            if absent > max_gap_days:
                raise SeqpipeError(f"{folder}: no file for the {(day - previous).days - 1:,} days between "
                                   f"{files[previous].name} and {files[day].name}; {cap}: remove a "
                                   "stray file, add the missing days, or keep only the files on one "
                                   "side of the gap")
        previous = day


def series_arrays(series: Series, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """(filled concentration (T,H,W), observed (T,H,W), ocean (H,W), static flags (H,W) uint16) of the
    grid's `rows` (all by default). Every pixel is computed from its own days only, so a band of rows
    gives exactly those rows of the whole.

    Pole hole -> 1.0 (ice-covered by convention), land/coast -> 0, missing pixels and missing days
    -> linear interpolation in time per pixel. `observed` is ocean pixels with a real value that day.
    """
    stack = series.band(rows)
    concentration, ocean_per_day = decode(stack)
    ocean = cast(np.ndarray, ocean_per_day.all(axis=0))   # (H, W): the stack is (T, H, W)
    del ocean_per_day
    pole = (stack == POLE_HOLE).any(axis=0)
    observed = np.isfinite(concentration) & ocean
    concentration[:, pole] = np.where(np.isnan(concentration[:, pole]), 1.0, concentration[:, pole])
    concentration[:, ~ocean] = 0.0
    flags = np.where(~ocean, np.where((stack == COAST).any(axis=0), COAST, LAND),
                     np.where(pole, POLE_HOLE, 0)).astype(np.uint16)
    return fill_in_time(concentration), observed, ocean, flags


def fill_in_time(values: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaN along axis 0 per pixel (nearest value at the ends; 0 if never seen)."""
    steps = len(values)
    flat = values.reshape(steps, -1)
    valid = np.isfinite(flat)
    if valid.all():
        return values.astype(np.float32)
    t, cols = np.nonzero(~valid)   # only the gaps are computed; every other value is kept as it is
    prev, nxt = _last_valid(valid)[t, cols].astype(np.int64), _next_valid(valid)[t, cols].astype(np.int64)
    before = flat[np.clip(prev, 0, steps - 1), cols]
    after = flat[np.clip(nxt, 0, steps - 1), cols]
    has_prev, has_next = prev >= 0, nxt < steps
    weight = np.where(has_prev & has_next, (t - prev) / np.maximum(nxt - prev, 1), 0.0)
    filled = np.where(has_prev, before, after) * (1 - weight) + np.where(has_next, after, before) * weight
    out = flat.astype(np.float32)
    out[t, cols] = np.nan_to_num(filled, nan=0.0)
    return out.reshape(values.shape)


def _last_valid(valid: np.ndarray) -> np.ndarray:
    """(T, N) int32: per column, the last step <= t where `valid` holds (-1 before the first)."""
    out = np.where(valid, np.arange(len(valid), dtype=np.int32)[:, None], np.int32(-1))
    # a running maximum row by row: contiguous rows, unlike accumulate on axis 0
    for i in range(1, len(out)):
        np.maximum(out[i - 1], out[i], out=out[i])
    return out


def _next_valid(valid: np.ndarray) -> np.ndarray:
    """(T, N) int32: per column, the first step >= t where `valid` holds (T after the last)."""
    out = np.where(valid, np.arange(len(valid), dtype=np.int32)[:, None], np.int32(len(valid)))
    for i in range(len(out) - 2, -1, -1):
        np.minimum(out[i + 1], out[i], out=out[i])
    return out


def block_mean(values: np.ndarray, weights: np.ndarray, factor: int) -> np.ndarray:
    """Weighted mean over factor x factor blocks of the last two axes (0 where the weights sum to 0)."""
    if factor == 1:
        return np.where(weights > 0, values, 0).astype(np.float32)
    *lead, h, w = values.shape
    shape = (*lead, h // factor, factor, w // factor, factor)
    v = values[..., : h - h % factor, : w - w % factor].reshape(shape)
    wt = np.broadcast_to(weights, values.shape)[..., : h - h % factor, : w - w % factor].reshape(shape)
    total = wt.sum(axis=(-3, -1))
    return np.where(total > 0, (v * wt).sum(axis=(-3, -1)) / np.maximum(total, 1e-12), 0).astype(np.float32)


def encode(concentration: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Concentration fraction -> uint16 x10 codes, with the flag pixels (non-zero `flags`) copied through."""
    codes = np.rint(np.clip(concentration, 0.0, 1.0) * 1000).astype(np.uint16)
    return np.where(flags > 0, flags, codes).astype(np.uint16)


def write_geotiff(path: Path, bands: np.ndarray, grid: Grid, nodata: float | None = None,
                  valid: np.ndarray | None = None, descriptions: list[str] | None = None, *,
                  atomic: bool = True) -> None:
    """(bands, H, W) or (H, W) array as a deflate GeoTIFF on `grid`, byte-deterministic and atomically
    (unless `atomic=False`: see rasters.geotiff_writer).

    `valid` (H, W) writes an internal mask band: False pixels read back as nodata.
    """
    import rasterio

    data = bands[None] if bands.ndim == 2 else bands
    profile = {"driver": "GTiff", "dtype": data.dtype.name, "count": len(data), "height": grid.height,
               "width": grid.width, "crs": grid.crs, "transform": grid.transform,
               "compress": "deflate", "nodata": nodata}
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), geotiff_writer(path, profile, atomic=atomic) as dst:
        dst.write(data)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
        if valid is not None:
            dst.write_mask(np.where(valid, 255, 0).astype(np.uint8))

