"""Synthetic sea-ice concentration in the Sea Ice Index (G02135) daily GeoTIFF format.

The field: an ice cap around a centre near the pole whose edge radius follows a seasonal cycle
(maximum in March, minimum in September, a random anomaly per year), a wavy edge whose lobes rotate
slowly, and drift of the whole field with a velocity that changes over weeks (so the last month of
maps says where it is heading). Inside the ice a texture of leads moves with the drift. Observations
add sensor noise, apply the product's 15% cutoff, and have occasional missing days and missing
swaths. Land, coast and the pole hole are fixed. Everything is a function of (seed, day).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import numpy as np

from seqpipe.data import seaice
from seqpipe.params import Range, check, check_date, check_end, check_size, params_section

# n_days x height x width: the series preprocess holds (about ten years of the whole grid)
MAX_CELL_DAYS = 2**29
GridPx = Annotated[float, Range(0, 1000)]   # a distance on the 25 km grid, in pixels


@params_section
class SeaIceSyntheticParams:
    start: str                     # first day, YYYY-MM-DD
    n_days: Annotated[int, Range(1, 36_600)]
    # sub-window of the 448 x 304 northern grid (rows, columns)
    height: Annotated[int, Range(8, seaice.NORTH_SHAPE[0])]
    width: Annotated[int, Range(8, seaice.NORTH_SHAPE[1])]
    row_off: Annotated[int, Range(0, seaice.NORTH_SHAPE[0] - 8)]
    col_off: Annotated[int, Range(0, seaice.NORTH_SHAPE[1] - 8)]
    # mean distance of the ice edge from its centre
    edge_radius_px: Annotated[float, Range(0, 1000, low_open=True)]
    seasonal_amplitude_px: GridPx   # March-to-September swing of that radius (half range)
    drift_px_per_day: Annotated[float, Range(0, 100)]        # standard deviation of the drift speed per axis
    drift_memory_days: Annotated[float, Range(1, 3650)]      # correlation time of the drift velocity
    noise_std: Annotated[float, Range(0, 1)]                 # observation noise, concentration fraction
    missing_day_fraction: Annotated[float, Range(0, 0.5, high_open=True)]
    pole_hole_radius_km: Annotated[float, Range(0, 5000)]

    def __post_init__(self) -> None:
        check_end("n_days", check_date("start", self.start), self.n_days, "start + n_days")
        check(self.row_off + self.height <= seaice.NORTH_SHAPE[0], "row_off",
              f"window rows must lie inside the {seaice.NORTH_SHAPE[0]} rows of the northern grid")
        check(self.col_off + self.width <= seaice.NORTH_SHAPE[1], "col_off",
              f"window columns must lie inside the {seaice.NORTH_SHAPE[1]} columns of the northern grid")
        check_size("n_days", self.n_days * self.height * self.width, MAX_CELL_DAYS,
                   "the series' cells (n_days x height x width)")


class IceField:
    """Clean concentration and G02135 observations of day `i` (0-based from `start`)."""

    def __init__(self, p: SeaIceSyntheticParams, seed: int) -> None:
        from scipy import ndimage

        self.p, self.seed = p, seed
        self.start = dt.date.fromisoformat(p.start)
        rng = np.random.default_rng([seed, 3411])
        self.grid = seaice.Grid(seaice.crs(), seaice.window_transform(p.row_off, p.col_off), p.width,
                                p.height)
        rows, cols = np.mgrid[0:p.height, 0:p.width].astype(np.float64)
        pole_row, pole_col = seaice.NORTH_ORIGIN[1] / seaice.PIXEL_M, -seaice.NORTH_ORIGIN[0] / seaice.PIXEL_M
        self.y, self.x = rows + p.row_off - pole_row, cols + p.col_off - pole_col   # pixels from the pole
        phi = np.exp(-1.0 / p.drift_memory_days)
        velocity = np.zeros((p.n_days, 2))
        offset = np.zeros((p.n_days, 2))
        shocks = rng.normal(0, p.drift_px_per_day * np.sqrt(1 - phi**2), (p.n_days, 2))
        velocity[0] = rng.normal(0, p.drift_px_per_day, 2)
        for i in range(1, p.n_days):
            velocity[i] = phi * velocity[i - 1] + shocks[i] - 0.01 * offset[i - 1]   # pulled back to the pole
            offset[i] = offset[i - 1] + velocity[i]
        self.offset = offset
        self.lobes = [(k, rng.uniform(0.04, 0.09) * p.edge_radius_px, rng.uniform(0, 2 * np.pi),
                       rng.normal(0, 2 * np.pi / 120)) for k in (2, 3, 5)]
        self.waves = [(rng.uniform(0, 2 * np.pi), 2 * np.pi / rng.uniform(6, 20), rng.uniform(0, 2 * np.pi))
                      for _ in range(8)]
        dist = np.hypot(self.x, self.y)
        relief = ndimage.gaussian_filter(rng.normal(size=(p.height, p.width)), sigma=max(p.width / 12, 1))
        land = (dist > 0.78 * (p.edge_radius_px + p.seasonal_amplitude_px)) & (relief > 0.5 * relief.std())
        coast = land & ndimage.binary_dilation(~land) if land.any() else land
        self.flags = np.where(coast, seaice.COAST, np.where(land, seaice.LAND, 0)).astype(np.uint16)
        self.flags[dist * seaice.PIXEL_M / 1000 <= p.pole_hole_radius_km] = seaice.POLE_HOLE
        self.ocean = ~land
        self.missing_days = rng.random(p.n_days) < p.missing_day_fraction
        self.missing_days[[0, -1]] = False

    def date(self, i: int) -> dt.date:
        return self.start + dt.timedelta(days=i)

    def clean(self, i: int) -> np.ndarray:
        """Noise-free concentration (0..1) of day i on ocean pixels, 0 on land."""
        p, day = self.p, self.date(i)
        season = np.cos(2 * np.pi * (day.timetuple().tm_yday - 70) / 365.25)
        anomaly = np.random.default_rng([self.seed, 1980, day.year]).normal(0, 0.15 * p.edge_radius_px)
        radius = p.edge_radius_px + p.seasonal_amplitude_px * season + anomaly   # a warm or cold year
        x, y = self.x - self.offset[i, 0], self.y - self.offset[i, 1]
        angle = np.arctan2(y, x)
        edge = radius + sum(a * np.cos(k * angle + ph + w * i) for k, a, ph, w in self.lobes)
        cover = 1.0 / (1.0 + np.exp(-(edge - np.hypot(x, y)) / 2.5))
        texture = sum(np.cos(f * (np.cos(d) * x + np.sin(d) * y) + ph) for d, f, ph in self.waves) / 8
        return np.where(self.ocean, np.clip(cover * (0.9 + 0.25 * texture), 0, 1), 0.0)

    def observe(self, i: int, clean: np.ndarray | None = None) -> np.ndarray:
        """uint16 G02135 codes of day i: noise, 15% cutoff, a missing swath now and then, flags.
        `clean` is `self.clean(i)` where the caller has it already."""
        rng = np.random.default_rng([self.seed, 2135, i])
        value = ((self.clean(i) if clean is None else clean)
                 + rng.normal(0, self.p.noise_std, self.ocean.shape))
        value = np.where(value < 0.15, 0.0, np.clip(value, 0, 1))
        codes = seaice.encode(value, self.flags)
        if rng.random() < 0.05:   # a swath the sensor missed
            h, w = self.ocean.shape
            r, c = rng.integers(0, h), rng.integers(0, w)
            swath = np.zeros_like(self.ocean)
            swath[r:r + h // 6, c:c + w // 3] = True
            codes[swath & (self.flags == 0)] = seaice.MISSING
        return codes

    def write_day(self, i: int, folder: Path, clean: np.ndarray | None = None) -> Path:
        """Day i's G02135 file in `folder`, a folder being built (a download's temp folder): written in
        place, not through a temp file of its own."""
        path = folder / seaice.file_name(self.date(i))
        folder.mkdir(parents=True, exist_ok=True)
        seaice.write_geotiff(path, self.observe(i, clean), self.grid, atomic=False)
        return path


def write_series(p: SeaIceSyntheticParams, seed: int, out_dir: Path) -> dict:
    """One G02135 file per day of `p.n_days`, except the missing days."""
    field = IceField(p, seed)
    written = [field.write_day(i, out_dir) for i in range(p.n_days) if not field.missing_days[i]]
    return {"synthetic": True, "generator": "nsidc_g02135_synthetic", "seed": seed, "product": "G02135 v3.0",
            "days": p.n_days, "files_written": len(written), "missing_days": int(field.missing_days.sum())}
