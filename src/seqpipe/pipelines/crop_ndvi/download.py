"""crop_ndvi downloads: Sentinel-2 L2A red/NIR/SCL GeoTIFFs, synthetic, local, from URLs or a STAC API.

The synthetic source writes every acquisition as `T33XXX_<YYYYMMDD>_{B04,B08,SCL}.tif`, as they lie on
disk: fields (Voronoi cells) carry crop-specific double-logistic NDVI seasons with varying sowing dates,
plus bare, urban and water cells; uint16 DN with nodata 0 in a UTM CRS at 10 m, reflectance
= (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE (baseline >= 04.00), clouds, shadows and cirrus
marked in SCL, a swath edge of nodata on some dates and a few saturated pixels. Seeded: same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd

from seqpipe.data.rasters import Grid, geotiff_profile, write_geotiff
from seqpipe.data.sentinel2 import SCL, SYNTHETIC_LAYOUT, StackLayout, find_scenes, index_stack
from seqpipe.errors import SeqpipeError
from seqpipe.params import Range, check, check_date, check_end, check_size, params_section
from seqpipe.sources.http import HttpParams, download_http
from seqpipe.sources.local import LocalParams, copy_local, local_source
from seqpipe.sources.stac import StacParams, download_stac

TILE = "T33UVP"
# name: (share of fields, base NDVI, peak NDVI, green-up day, senescence day) in days after `start`
CLASSES = {"wheat": (0.25, 0.25, 0.82, -5, 95), "maize": (0.22, 0.18, 0.88, 50, 145),
           "soybean": (0.15, 0.18, 0.80, 60, 150), "sugar_beet": (0.13, 0.16, 0.85, 40, 170),
           "grassland": (0.10, 0.45, 0.72, 10, 160), "bare": (0.05, 0.12, 0.12, 0, 0),
           "urban": (0.05, 0.06, 0.06, 0, 0), "water": (0.05, -0.35, -0.35, 0, 0)}

@params_section(kw_only=True)
class CropLocalParams(StackLayout):
    """The layout keys (and boa_add_offset) of StackLayout, which `http` files are indexed with too."""

    path: str          # the folder of GeoTIFFs; relative paths are taken from the repository root


def copy_local_stack(p: CropLocalParams, out_dir: Path) -> dict:
    """Source `local`: check the folder's layout (errors name the user's folder), copy it, index the copy."""
    source = local_source(LocalParams(path=p.path))
    if not source.is_dir():
        raise SeqpipeError(f"{p.path}: not a folder (download.local.path must name a folder of GeoTIFFs)")
    find_scenes(source, p)
    fields = copy_local(LocalParams(path=p.path), None, out_dir)
    scenes = index_stack(out_dir, p)
    return {**fields, "dates": [s["date"] for s in scenes]}


MAX_PIXEL_DATES = 2**30   # width x height x n_dates of the synthetic stack (about 6 GB of GeoTIFFs)


@params_section
class CropSyntheticParams:
    width: Annotated[int, Range(8, 10_980)]      # pixels (a Sentinel-2 tile is 10980 x 10980 at 10 m)
    height: Annotated[int, Range(8, 10_980)]
    start: str                  # first acquisition date (ISO)
    n_dates: Annotated[int, Range(4, 1000)]      # acquisitions over the season
    revisit_days: Annotated[int, Range(1, 366)]
    # fraction of revisit slots with none
    missing_acquisitions: Annotated[float, Range(0, 0.5, high_open=True)]
    epsg: Annotated[int, Range(32601, 32760)]   # a WGS 84 / UTM zone, e.g. 32633
    origin_x: Annotated[float, Range(-1e7, 1e7)]  # upper-left corner, metres (UTM easting)
    origin_y: Annotated[float, Range(-1e7, 1e7)]  # (UTM northing)
    pixel_size: Annotated[float, Range(0.1, 10_000)]   # metres (10 for B04/B08)
    field_size_px: Annotated[int, Range(2, 10_000)]   # mean field spacing in pixels
    cloud_fraction: Annotated[float, Range(0, 0.9, high_open=True)]   # mean cloud cover per date
    baseline: str               # processing baseline written in the tags, e.g. "05.09"

    def __post_init__(self) -> None:
        start = check_date("start", self.start)
        check_end("n_dates", start, self.n_dates * (1 + self.missing_acquisitions) * self.revisit_days + 1,
                  "n_dates x revisit_days")
        check(32601 <= self.epsg <= 32660 or 32701 <= self.epsg <= 32760, "epsg",
              f"must be a WGS 84 / UTM zone (326xx or 327xx, as Sentinel-2 tiles), got {self.epsg}")
        check(_baseline_number(self.baseline) is not None, "baseline", f"not like '05.09': {self.baseline!r}")
        check_size("n_dates", self.width * self.height * self.n_dates, MAX_PIXEL_DATES,
                   "the synthetic stack's pixels (width x height x n_dates)")


def write_synthetic(p: CropSyntheticParams, seed: int, out_dir: Path) -> dict:
    """Write every date's B04/B08/SCL GeoTIFFs into `out_dir`; returns the manifest fields."""
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    grid = Grid(CRS.from_epsg(p.epsg), from_origin(p.origin_x, p.origin_y, p.pixel_size, p.pixel_size),
                p.width, p.height)
    classes, shift, amplitude = _fields(rng, p)
    slots = np.arange(p.n_dates + int(np.ceil(p.n_dates * p.missing_acquisitions)) + 1)
    keep = np.sort(rng.permutation(len(slots) - 1)[: p.n_dates - 1] + 1)  # the first slot is always kept
    days = np.concatenate([[0], keep]) * p.revisit_days
    start = pd.Timestamp(p.start)
    baseline = _baseline_number(p.baseline)
    assert baseline is not None   # CropSyntheticParams checked it
    offset = -1000 if baseline >= 4.0 else 0
    names = list(CLASSES)
    dates = []
    for k, day in enumerate(days):
        truth = _ndvi(classes, shift, amplitude, float(day), names)
        truth = np.clip(truth + rng.normal(0, 0.015, truth.shape), -0.6, 0.95)
        red, nir, scl = _bands(rng, p, truth, classes, names)
        date = (start + pd.Timedelta(days=int(day))).strftime("%Y%m%d")
        tags = {"PROCESSING_BASELINE": p.baseline, "BOA_ADD_OFFSET": str(offset),
                "BOA_QUANTIFICATION_VALUE": "10000", "DATATAKE_SENSING_DATE": date,
                "SPACECRAFT_NAME": "Sentinel-2A" if k % 2 == 0 else "Sentinel-2B"}
        for band, reflectance in (("B04", red), ("B08", nir)):
            dn = np.clip(np.round(reflectance * 10000 - offset), 1, 65535).astype(np.uint16)
            dn[scl == SCL["nodata"]] = 0
            dn[scl == SCL["saturated"]] = 65535
            write_geotiff(out_dir / f"{TILE}_{date}_{band}.tif", dn, geotiff_profile(grid, "uint16", 0),
                          {**tags, "BAND": band})
        write_geotiff(out_dir / f"{TILE}_{date}_SCL.tif", scl, geotiff_profile(grid, "uint8", 0),
                      {**tags, "BAND": "SCL"})
        dates.append(date)
    index_stack(out_dir, SYNTHETIC_LAYOUT)
    return {"synthetic": True, "generator": "sentinel2_l2a_fields", "seed": seed, "dates": dates,
            "crs": f"EPSG:{p.epsg}", "shape": [p.height, p.width]}


def _fields(rng: np.random.Generator, p: CropSyntheticParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: class index, sowing shift (days) and a smooth within-field vigour factor."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    n_fields = max(4, round(p.width * p.height / p.field_size_px**2))
    seeds = rng.uniform(0, 1, (n_fields, 2)) * (p.height, p.width)
    shares = np.array([v[0] for v in CLASSES.values()])
    field_class = rng.choice(len(CLASSES), n_fields, p=shares / shares.sum())
    field_shift = rng.normal(0, 8, n_fields)
    rows, cols = np.mgrid[0:p.height, 0:p.width]
    _, nearest = cKDTree(seeds).query(np.stack([rows.ravel(), cols.ravel()], 1))
    nearest = nearest.reshape(p.height, p.width)
    vigour = 1 + 0.06 * ndimage.gaussian_filter(rng.normal(0, 1, (p.height, p.width)), 3) * 3
    return field_class[nearest], field_shift[nearest], vigour.astype(np.float32)


def _ndvi(classes: np.ndarray, shift: np.ndarray, vigour: np.ndarray, day: float,
          names: list[str]) -> np.ndarray:
    """Double-logistic season: base + (peak - base) * (rise(day) - fall(day)), per class."""
    out = np.empty(classes.shape, np.float32)
    for k, name in enumerate(names):
        _, base, peak, green_up, senescence = CLASSES[name]
        here = classes == k
        t = day - shift[here]
        rise = 1 / (1 + np.exp(-(t - green_up) / 7.0))
        fall = 1 / (1 + np.exp(-(t - senescence) / 9.0))
        out[here] = base + (peak - base) * vigour[here] * (rise - fall) if peak != base else base
    return out


def _bands(rng: np.random.Generator, p: CropSyntheticParams, truth: np.ndarray, classes: np.ndarray,
           names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red and NIR reflectance with clouds/shadows/cirrus, and the matching SCL classes."""
    from scipy import ndimage

    water = classes == names.index("water")
    brightness = np.where(water, 0.06, 0.30 + 0.15 * np.clip(truth, 0, 1))
    red, nir = brightness * (1 - truth) / 2, brightness * (1 + truth) / 2
    scl = np.where(water, SCL["water"], np.where(truth > 0.3, SCL["vegetation"], SCL["not_vegetated"]))
    cover = (rng.beta(0.6, 0.6 * (1 - p.cloud_fraction) / max(p.cloud_fraction, 1e-3)) if p.cloud_fraction
             else 0)
    field = ndimage.gaussian_filter(rng.normal(0, 1, truth.shape), max(truth.shape) / 10, mode="wrap")
    if cover > 0.01:
        level = np.quantile(field, 1 - cover)
        cloud = field >= level
        core = field >= level + 0.5 * (field.max() - level)
        cirrus = (field >= level - 0.15 * field.std()) & ~cloud
        shadow = np.roll(cloud, (max(2, truth.shape[0] // 12), max(2, truth.shape[1] // 10)), (0, 1)) & ~cloud
        haze = rng.uniform(0.35, 0.7)
        red, nir = np.where(cloud, haze, red), np.where(cloud, haze * 1.03, nir)
        red, nir = np.where(cirrus, red + 0.08, red), np.where(cirrus, nir + 0.08, nir)
        red, nir = np.where(shadow, red * 0.35, red), np.where(shadow, nir * 0.35, nir)
        scl = np.select([core, cloud, cirrus, shadow], [SCL["cloud_high"], SCL["cloud_medium"], SCL["cirrus"],
                                                        SCL["shadow"]], scl)
    saturated = rng.random(truth.shape) < 0.0005
    scl = np.where(saturated, SCL["saturated"], scl)
    if rng.random() < 0.1:  # swath edge: a corner without data
        rows, cols = np.mgrid[0:truth.shape[0], 0:truth.shape[1]]
        scl = np.where(rows + cols < rng.uniform(0.2, 0.6) * truth.shape[0], SCL["nodata"], scl)
    return red, nir, scl.astype(np.uint8)


def _baseline_number(text: str) -> float | None:
    """'05.09' -> 5.09; None unless two digits, a dot, two digits (as the L2A metadata writes it)."""
    return float(text) if re.fullmatch(r"[0-9]{2}\.[0-9]{2}", text) else None


@params_section
class DownloadParams:
    source: Literal["synthetic", "local", "http", "stac"]
    synthetic: CropSyntheticParams
    local: CropLocalParams   # a folder of GeoTIFFs; its layout (file pattern, bands, date) is named here
    http: HttpParams         # GeoTIFFs from URLs, indexed with the layout keys of `local`
    stac: StacParams         # Sentinel-2 L2A from a STAC API (Earth Search by default), windowed to a bbox


LOCAL_PATHS = ("local.path",)   # download keys naming the user's files: deps of the download stage
SOURCES = {"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local_stack(p.local, out),
           "http": lambda p, seed, out: download_http(p.http, out, lambda d: index_stack(d, p.local)),
           "stac": lambda p, seed, out: download_stac(p.stac, out)}
