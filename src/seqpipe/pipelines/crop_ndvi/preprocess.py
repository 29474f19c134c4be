"""crop_ndvi preprocess: GeoTIFF stack -> masked NDVI per pixel on a regular date grid, the sampled
pixels' rows that valid windows read stored once, and the windows' starts in them (seqpipe.data.windows
cuts them on demand).

Reads block by block (peak memory set by `block_size` and the number of dates, not the raster),
samples at most about `max_pixels` pixels, and splits train/val/test by spatial blocks so that
neighbouring pixels do not straddle splits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import numpy as np
import pandas as pd

from seqpipe.data.rasters import (
    Grid,
    aligned,
    bounded_cache,
    iter_windows,
    ndvi,
    nodata_mask,
    open_raster,
    read_window,
    require_georeferenced,
    require_in_budget,
    require_same_grid,
    tile_aligned,
)
from seqpipe.data.sentinel2 import BANDS, INDEX, OFFSET_KEY, read_scenes
from seqpipe.data.series import RangeCheck, Standardizer, save_splits, sliding_windows, training_range
from seqpipe.data.windows import cut, stored_arrays
from seqpipe.errors import SeqpipeError
from seqpipe.params import Length, Range, SplitFraction, check_size, params_section

if TYPE_CHECKING:
    from rasterio.windows import Window

log = logging.getLogger(__name__)

SATURATED = 65535
MAX_OUTSIDE, MIN_OUTSIDE = 0.05, 10   # NDVI outside [-1, 1] on more of a date's valid pixels: a wrong offset
OUTSIDE = ("a network reading globally standardised windows extrapolates there (models.crop_ndvi.model."
           "normalisation: difference or revin reads each window relative to itself)")
# L2A digital numbers, SCL classes
DN_TYPES = {"red": ("uint16",), "nir": ("uint16",), "scl": ("uint8", "uint16")}


MAX_WINDOW_VALUES = 2**28   # max_pixels x window: the sampled windows' values (1 GiB of float32)


@params_section
class PreprocessParams:
    grid_days: Annotated[int, Range(1, 366)]         # the regular date grid's step
    # interior gaps up to this many grid steps are interpolated; longer ones break windows
    max_gap_steps: Annotated[int, Range(0, 100)]
    window: Annotated[int, Range(2, 366)]            # input steps per sample; the target is the next step
    # SCL classes treated as invalid (nodata, saturated, shadow, clouds, cirrus)
    mask_scl: Annotated[list[Annotated[int, Range(0, 255)]], Length(0, 256)]
    reproject: bool          # dates on another grid: reproject onto the first date's grid (else an error)
    # pixels per side of the read windows (bounds memory; rounded up to whole file tiles)
    block_size: Annotated[int, Range(16, 8192)]
    max_pixels: Annotated[int, Range(10, 10**8)]     # about this many pixels are sampled for the windows
    split_block_px: Annotated[int, Range(1, 10_980)]  # side of the spatial blocks assigned whole to a split
    val_fraction: SplitFraction
    test_fraction: SplitFraction
    map_size: Annotated[int, Range(8, 10_980)]       # side of the top-left region kept for evaluation maps
    # warn when val/test NDVI lies this share of the training range beyond it
    range_margin: Annotated[float, Range(0, 100, note="a share of the training range")]

    def __post_init__(self) -> None:
        check_size("max_pixels", self.max_pixels * self.window, MAX_WINDOW_VALUES,
                   "the sampled windows' values (max_pixels x window)")


# a longer time without a scene: a stray date (the date grid would span it), refused
MAX_SCENE_GAP_DAYS = 366


def require_no_stray_dates(folder: Path, scenes: list[dict]) -> None:
    """Refuse more than MAX_SCENE_GAP_DAYS between two consecutive (sorted) scenes, naming both: the regular
    date grid would span the gap with empty steps (gaps up to max_gap_steps are interpolated, longer ones
    break windows, so nothing is learnt there; a stray date from another decade only costs memory and
    time)."""
    dates = pd.to_datetime([s["date"] for s in scenes])
    gaps = np.diff(dates.to_numpy()).astype("timedelta64[D]").astype(np.int64)
    if len(gaps) and gaps.max() > MAX_SCENE_GAP_DAYS:
        k = int(np.argmax(gaps > MAX_SCENE_GAP_DAYS))
        a, b = scenes[k], scenes[k + 1]
        raise SeqpipeError(f"{folder}: no scene for {gaps[k]:,} days between {a['date']} "
                           f"({a['red']['file']}) and {b['date']} ({b['red']['file']}), more than "
                           f"{MAX_SCENE_GAP_DAYS}: a stray date? Remove it, or preprocess the dates on each "
                           "side of the gap separately")


def scale_offset(path: Path, tags: dict[str, str], override: int | None = None) -> tuple[float, float, str]:
    """(offset, quantification, where the offset came from) so that
    reflectance = (DN + offset) / quantification.

    `override` (download.local.boa_add_offset, via scenes.json) wins; then explicit BOA_ADD_OFFSET /
    BOA_QUANTIFICATION_VALUE tags; otherwise PROCESSING_BASELINE >= 04.00 means offset -1000 (ESA's
    change of January 2022), older baselines none.
    """
    try:
        quant = float(tags.get("BOA_QUANTIFICATION_VALUE", 10000))
        if override is not None:
            offset, origin = float(override), "download.local.boa_add_offset"
        elif "BOA_ADD_OFFSET" in tags:
            offset, origin = float(tags["BOA_ADD_OFFSET"]), f"tag BOA_ADD_OFFSET {tags['BOA_ADD_OFFSET']}"
        elif (baseline := tags.get("PROCESSING_BASELINE")) is None:
            raise SeqpipeError(f"{path}: no PROCESSING_BASELINE or BOA_ADD_OFFSET tag; cannot scale DN "
                               "to reflectance")
        else:
            offset, origin = (-1000.0 if float(baseline) >= 4.0 else 0.0), f"PROCESSING_BASELINE {baseline}"
    except ValueError:
        raise SeqpipeError(f"{path}: unreadable scale tags {tags}") from None
    if not (np.isfinite(offset) and np.isfinite(quant) and quant > 0):
        raise SeqpipeError(f"{path}: scale tags give offset {offset:g} and quantification {quant:g}; "
                           "a finite offset and a positive quantification value are needed")
    return offset, quant, origin


class Stack:
    """Open red/NIR/SCL datasets of every date on one grid; `ndvi(window)` reads only that window.

    A pixel is invalid where SCL is in `mask_scl`, a DN is 0 or saturated, a file's own nodata value or
    mask says so, or its NDVI falls outside [-1, 1] (counted per date; see `check_ndvi_range`).
    """

    def __init__(self, folder: Path, scenes: list[dict], mask_scl: list[int], reproject: bool) -> None:
        self.mask_scl = np.asarray(mask_scl, np.uint8)
        self.dates = pd.to_datetime([s["date"] for s in scenes])
        self._exit = contextlib.ExitStack()
        self.bands: list[dict[str, tuple[Any, int, Path]]] = []
        self.scale: list[tuple[float, float, float, float]] = []
        self.offset_origin: list[str] = []
        self.checked, self.outside = np.zeros(len(scenes), np.int64), np.zeros(len(scenes), np.int64)
        first: tuple[Grid, Path] | None = None   # the first file's grid, and that file
        try:
            self._exit.enter_context(bounded_cache())
            for scene in scenes:
                opened, tags = {}, {}
                for band in BANDS:
                    path = folder / scene[band]["file"]
                    ds = self._exit.enter_context(open_raster(path))
                    if scene[band]["band"] > ds.count:
                        raise SeqpipeError(f"{path}: has {ds.count} band(s), but {band} of "
                                           f"{scene['date']} is band {scene[band]['band']} ({INDEX} or "
                                           f"download.local.{band})")
                    require_georeferenced(path, ds, DN_TYPES[band])
                    if first is None:
                        first = Grid.of(ds), path
                    grid, reference = first
                    if band != "scl" and not reproject:  # SCL may be 20 m: always resampled (nearest)
                        require_same_grid(reference, grid, path, Grid.of(ds))
                    opened[band], tags[band] = (aligned(ds, grid), scene[band]["band"], path), ds.tags()
                self.bands.append(opened)
                (red_off, red_q, origin), (nir_off, nir_q, _) = (
                    scale_offset(opened[b][2], tags[b], scene.get(OFFSET_KEY)) for b in ("red", "nir"))
                self.scale.append((red_off, red_q, nir_off, nir_q))
                self.offset_origin.append(origin)
            assert first is not None   # read_scenes and find_scenes refuse a folder without dates
            self.grid = first[0]
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._exit.close()

    def window_size(self, requested: int) -> int:
        """The read window side: `requested`, rounded up to whole tiles of the first date's red band."""
        return tile_aligned(requested, self.bands[0]["red"][0])

    def ndvi(self, window: Window) -> np.ndarray:
        """(dates, rows, cols) float32 NDVI of one window; NaN where invalid (see the class)."""
        out = np.empty((len(self.bands), int(window.height), int(window.width)), np.float32)
        for k, (opened, (red_off, red_q, nir_off, nir_q)) in enumerate(zip(self.bands, self.scale,
                                                                           strict=True)):
            dn = {b: read_window(ds, band, window, path) for b, (ds, band, path) in opened.items()}
            red_dn, nir_dn, scl = dn["red"], dn["nir"], dn["scl"]
            value = ndvi((nir_dn + nir_off) / nir_q, (red_dn + red_off) / red_q)
            bad = np.isin(scl, self.mask_scl) | (red_dn == 0) | (nir_dn == 0)
            bad |= (red_dn == SATURATED) | (nir_dn == SATURATED)
            for b, (ds, band, path) in opened.items():   # the files' own nodata values and masks
                bad |= nodata_mask(ds, band, dn[b], path, window)
            outside = ~bad & ((value < -1) | (value > 1))
            self.checked[k] += int((~bad & ~np.isnan(value)).sum())
            self.outside[k] += int(outside.sum())
            out[k] = np.where(bad | outside, np.float32(np.nan), value)
        return out

    def check_ndvi_range(self) -> None:
        """After a pass over the rasters: refuse when a date's NDVI left [-1, 1] on more than MAX_OUTSIDE
        of its valid pixels (the DN offset is then wrong: e.g. files tagged baseline >= 04.00 whose DN are
        already offset-free); warn about fewer, which stay masked (noise on very dark pixels)."""
        share = self.outside / np.maximum(self.checked, 1)
        k = int(np.argmax(share))
        red = self.bands[k]["red"][2]
        if share[k] > MAX_OUTSIDE and self.outside[k] >= MIN_OUTSIDE:
            raise SeqpipeError(f"{red}: {share[k]:.0%} of the NDVI values of {self.dates[k]:%Y-%m-%d} "
                               f"are outside [-1, 1] after scaling DN with offset {self.scale[k][0]:g} "
                               f"({self.offset_origin[k]}); the offset is probably wrong for these files (DN "
                               "already offset-free?): set models.crop_ndvi.download.local.boa_add_offset "
                               "(e.g. 0) for local or http data")
        if self.outside.any():
            log.warning("%s: %d NDVI value(s) outside [-1, 1] after scaling masked as invalid "
                        "(most on %s); if many, the DN offset may be wrong for these files "
                        "(download.local.boa_add_offset)",
                        red.parent, int(self.outside.sum()), f"{self.dates[k]:%Y-%m-%d}")


def date_grid(dates: pd.DatetimeIndex, grid_days: int) -> np.ndarray:
    """Grid step of each acquisition (nearest step of the regular grid starting at the first date)."""
    return np.round((dates - dates[0]).days.to_numpy() / grid_days).astype(int)


def to_grid(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(dates, ...) -> (grid steps, ...); NaN where no acquisition, later valid values win on ties."""
    out = np.full((steps.max() + 1, *values.shape[1:]), np.nan, np.float32)
    for k, step in enumerate(steps):
        out[step] = np.where(np.isnan(values[k]), out[step], values[k])
    return out


def fill_short_gaps(series: np.ndarray, max_gap: int) -> np.ndarray:
    """Linear interpolation along axis 0 of interior NaN runs of at most `max_gap` steps."""
    t = np.arange(len(series)).reshape(-1, *[1] * (series.ndim - 1))
    valid = ~np.isnan(series)
    prev = np.maximum.accumulate(np.where(valid, t, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, t, len(series))[::-1], axis=0)[::-1]
    fill = ~valid & (prev >= 0) & (nxt < len(series)) & (nxt - prev - 1 <= max_gap)
    p_idx, n_idx = np.clip(prev, 0, None), np.clip(nxt, None, len(series) - 1)
    before = np.take_along_axis(series, p_idx, 0)
    after = np.take_along_axis(series, n_idx, 0)
    weight = (t - prev) / np.maximum(nxt - prev, 1)
    return np.where(fill, before + (after - before) * weight, series).astype(np.float32)


def valid_windows(series: np.ndarray, window: int, max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From (steps, pixels) gridded NDVI: the series with short gaps filled, and the valid (input, target)
    pairs' window starts and pixels (np.nonzero order: by start, then pixel). Window i's inputs are
    filled[start_i : start_i + window, pixel_i], its target filled[start_i + window, pixel_i].

    Valid: every input step observed or in a filled short gap, and both the last input step and the
    target real observations, so a gap is only filled from values up to the window's end (no leak).
    """
    observed = ~np.isnan(series)
    filled = fill_short_gaps(series, max_gap)
    n = len(series) - window
    complete = cast(np.ndarray, sliding_windows(~np.isnan(filled), window).all(axis=1))[:n]
    valid = complete & observed[window - 1:-1] & observed[window:]
    starts, pixels = np.nonzero(valid)
    return filled, starts, pixels


def coverage(size: int, starts: np.ndarray, length: int) -> np.ndarray:
    """How many of the windows [start, start + length) cover each of `size` rows."""
    edges = np.zeros(size + 1, np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + length, -1)
    return np.cumsum(edges[:-1])


def window_rows(series: np.ndarray, starts: np.ndarray, length: int,
                chunk: int = 65536) -> Iterator[np.ndarray]:
    """The rows [start, start + length) of `series` for each start, `chunk` windows at a time."""
    for k in range(0, len(starts), chunk):
        yield series[starts[k:k + chunk, None] + np.arange(length)]


def preprocess(p: PreprocessParams, seed: int, raw_dir: Path, out_dir: Path) -> dict:
    scenes = read_scenes(raw_dir)
    require_no_stray_dates(raw_dir, scenes)
    with Stack(raw_dir, scenes, p.mask_scl, p.reproject) as stack:
        grid, steps = stack.grid, date_grid(stack.dates, p.grid_days)
        n_steps = int(steps.max()) + 1
        if n_steps < p.window + 2:
            raise SeqpipeError(f"{raw_dir / INDEX}: {len(scenes)} dates span {n_steps} grid steps of "
                               f"{p.grid_days} days; need at least window + 2 = {p.window + 2}")
        fraction = min(1.0, p.max_pixels / (grid.width * grid.height))
        splits = _block_splits(grid, p, seed, stack.bands[0]["red"][2])
        # the gridded series of the sampled pixels stored once, one after another, keeping only the rows
        # a valid window or its target reads; a window is its first row there (seqpipe.data.windows), the
        # windows in block order, then by start, then by pixel
        stored: list[np.ndarray] = []
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {s: [] for s in ("train", "val", "test")}
        masked, total, n_stored = np.zeros(len(scenes)), 0, 0
        for win in iter_windows(grid.height, grid.width, stack.window_size(p.block_size)):
            values = stack.ndvi(win)
            masked += np.isnan(values).sum(axis=(1, 2))
            total += values[0].size
            rows, cols = _pixel_coords(win)
            pick = pixel_uniform(seed, rows, cols) < fraction
            picked = values.reshape(len(values), -1)[:, pick]  # gridding is per pixel: only the sampled ones
            filled, starts, pixel = valid_windows(to_grid(picked, steps), p.window, p.max_gap_steps)
            kept, rank = np.unique(pixel, return_inverse=True)
            flat = filled[:, kept].T.reshape(-1)   # each pixel's series, one after another
            at = rank * n_steps + starts           # each window's first row in `flat`
            used = coverage(len(flat), at, p.window + 1) > 0
            stored.append(flat[used])
            first_row = n_stored + np.cumsum(used)[at] - 1   # a window's rows are all used: still a run
            n_stored += int(used.sum())
            r, c = rows[pick][pixel], cols[pick][pixel]
            split = splits[(r // p.split_block_px) * _blocks(grid.width, p) + c // p.split_block_px]
            meta = np.stack([r, c, starts + p.window], 1).astype(np.int32)
            for code, name in enumerate(parts):
                here = split == code
                parts[name].append((first_row[here], meta[here]))
        stack.check_ndvi_range()
        if (masked == total).all():
            raise SeqpipeError(f"{raw_dir}: every pixel of every date is nodata or masked (SCL classes "
                               f"{p.mask_scl}); no NDVI to learn from")
        maps = _map_arrays(stack, steps, p)
    first_rows = {name: np.concatenate([c[0] for c in chunks]) for name, chunks in parts.items()}
    for name, rows_of in first_rows.items():
        if len(rows_of) < 10:
            raise SeqpipeError(f"{raw_dir}: only {len(rows_of)} {name} windows; use a larger raster, more "
                               "dates or a higher models.crop_ndvi.preprocess.max_pixels")
    series = np.concatenate(stored)
    train = first_rows["train"]
    # the train windows' inputs as a multiset, sorted (order-free), as the scaler saw them materialised
    scaler = Standardizer.fit(np.sort(np.repeat(series, coverage(len(series), train, p.window)))[:, None])
    seen = coverage(len(series), train, p.window + 1) > 0   # rows of the train windows and targets
    train_range = training_range(series[seen][:, None], ["ndvi"])
    ranges = RangeCheck(["ndvi"], train_range, p.range_margin)
    for name in ("val", "test"):
        for rows_of in window_rows(series, first_rows[name], p.window + 1):   # a window and its target
            ranges.add(name, rows_of[..., None])
    outside = ranges.warn(str(raw_dir), OUTSIDE)
    maps["arrays"]["map_x"] = scaler.transform(maps["arrays"]["map_x"])
    arrays = stored_arrays({"ndvi": scaler.transform(series[:, None])}, first_rows)
    arrays["meta_test"] = np.concatenate([c[1] for c in parts["test"]])   # row, col, target step (plots)
    arrays.update(maps.pop("arrays"))
    train_y = scaler.inverse(scaler.transform(series[train + p.window][:, None]))
    windows = {"x": cut("ndvi", 0, p.window), "y": cut("ndvi", p.window, None)}
    return {"window": p.window, "grid_days": p.grid_days, "max_gap_steps": p.max_gap_steps,
            "feature_columns": ["ndvi"], "target_columns": ["ndvi"], "mask_scl": p.mask_scl,
            "scaler": scaler.to_dict(),   # x and y are (NDVI - mean) / std
            "dates": [d.strftime("%Y-%m-%d") for d in stack.dates], "date_steps": steps.tolist(),
            "grid_start": stack.dates[0].strftime("%Y-%m-%d"), "n_steps": n_steps,
            "masked_fraction": (masked / max(total, 1)).round(4).tolist(),
            "crs": grid.crs.to_wkt(), "transform": list(grid.transform)[:6],
            "shape": [grid.height, grid.width],
            "pixel_fraction": fraction, "ndvi_train_range": [float(train_y.min()), float(train_y.max())],
            "train_range": train_range, "range_margin": p.range_margin, "out_of_range": outside,
            **maps, "windows": windows, "arrays": save_splits(out_dir, arrays)}


def _map_arrays(stack: Stack, steps: np.ndarray, p: PreprocessParams) -> dict:
    """The top-left map_size square: every pixel's window before the clearest pair of grid steps."""
    from rasterio.windows import Window

    size_r, size_c = min(p.map_size, stack.grid.height), min(p.map_size, stack.grid.width)
    series = to_grid(stack.ndvi(Window(0, 0, size_c, size_r)), steps)
    observed = ~np.isnan(series).reshape(len(series), -1)
    clear = observed[p.window - 1:-1].mean(1) + observed[p.window:].mean(1)
    target = p.window + int(len(clear) - 1 - np.argmax(clear[::-1]))  # clearest pair, latest on ties
    filled = fill_short_gaps(series[target - p.window:target], p.max_gap_steps)
    valid = ~np.isnan(filled).any(0) & ~np.isnan(series[target - 1])
    x = np.nan_to_num(filled.reshape(p.window, -1).T, nan=0.0)[..., None]
    start = pd.Timestamp(stack.dates[0])
    return {"map_target_date": (start + pd.Timedelta(days=int(target * p.grid_days))).strftime("%Y-%m-%d"),
            "map_last_date": (start + pd.Timedelta(days=int((target - 1) * p.grid_days))).strftime(
                "%Y-%m-%d"),
            "arrays": {"map_x": x.astype(np.float32), "map_valid": valid.astype(np.uint8),
                       "map_last": series[target - 1], "map_actual": series[target]}}


def _blocks(width: int, p: PreprocessParams) -> int:
    return -(-width // p.split_block_px)


def _block_splits(grid: Grid, p: PreprocessParams, seed: int, path: Path) -> np.ndarray:
    """Split code per spatial block (0 train, 1 val, 2 test), by a seeded permutation (of `path`'s grid)."""
    n = _blocks(grid.width, p) * -(-grid.height // p.split_block_px)
    require_in_budget(path, 25 * n, f"splitting {grid.width}x{grid.height} pixels into {n} blocks of "
                      f"{p.split_block_px} px", "crop the file or raise "
                      "models.crop_ndvi.preprocess.split_block_px")
    rank = np.random.default_rng(seed).permutation(n)
    n_test, n_val = max(1, round(n * p.test_fraction)), max(1, round(n * p.val_fraction))
    return np.where(rank < n_test, 2, np.where(rank < n_test + n_val, 1, 0)).astype(np.int8)


def _pixel_coords(win: Window) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[int(win.row_off):int(win.row_off + win.height),
                          int(win.col_off):int(win.col_off + win.width)]
    return rows.ravel().astype(np.int64), cols.ravel().astype(np.int64)


def pixel_uniform(seed: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A uniform [0, 1) number per pixel from (seed, row, col) alone, so sampling ignores block size."""
    z = (rows.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
         + cols.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
    z ^= np.uint64(seed * 0x165667B19E3779F9 % 2**64)
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        z = (z ^ (z >> np.uint64(shift))) * np.uint64(mult)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53
