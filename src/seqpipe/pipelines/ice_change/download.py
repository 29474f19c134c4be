"""ice_change downloads: pairs of G02135 rasters with a change mask (see pairs.py), synthetic, local,
from URLs or from NSIDC."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from seqpipe.data import seaice
from seqpipe.errors import SeqpipeError
from seqpipe.params import Length, Range, check, check_size, params_section
from seqpipe.pipelines.ice_change.pairs import MASK_NAME, NOT_EVALUATED, change_mask, pair_folders
from seqpipe.sources.http import HttpParams, download_http
from seqpipe.sources.local import LocalParams, copy_local, local_source
from seqpipe.sources.nsidc import NsidcParams, download_series
from seqpipe.sources.nsidc_synthetic import IceField, SeaIceSyntheticParams

MAX_PAIR_CELLS = 2**29   # n_pairs x height x width: the pairs preprocess holds
Days = Annotated[int, Range(1, 3650)]


@params_section
class IceChangeSyntheticParams:
    field: SeaIceSyntheticParams    # the concentration series the pairs are drawn from
    n_pairs: Annotated[int, Range(10, 100_000)]
    gap_min_days: Days
    gap_max_days: Days

    def __post_init__(self) -> None:
        check(self.gap_min_days <= self.gap_max_days, "gap_min_days", "need gap_min_days <= gap_max_days")
        check(self.gap_max_days < self.field.n_days, "gap_max_days", "must be below field.n_days")
        check_size("n_pairs", self.n_pairs * self.field.height * self.field.width, MAX_PAIR_CELLS,
                   "the pairs' cells (n_pairs x field.height x field.width)")


@params_section
class IceChangeNsidcParams(NsidcParams):
    # a pair is (day, day + gap) for every gap in this list ...
    gap_days: Annotated[list[Days], Length(1, 32)]
    stride_days: Days     # ... and every stride_days-th day from start, where both files exist


@params_section
class DownloadParams:
    source: Literal["synthetic", "local", "http", "nsidc"]
    synthetic: IceChangeSyntheticParams
    local: LocalParams   # a folder of pair folders laid out as above
    http: HttpParams     # files whose paths rebuild that layout (pair_0000/N_..., pair_0000/change_mask.tif)
    nsidc: IceChangeNsidcParams


def write_pairs(p: IceChangeSyntheticParams, seed: int, out_dir: Path) -> dict:
    """`n_pairs` pair folders in date order; the mask compares the noise-free fields at 15%."""
    field = IceField(p.field, seed)
    rng = np.random.default_rng([seed, 1, 2])
    firsts = np.sort(rng.integers(0, p.field.n_days - p.gap_max_days, p.n_pairs))
    gaps = rng.integers(p.gap_min_days, p.gap_max_days + 1, p.n_pairs)
    evaluated = (field.flags == 0)
    clean = functools.lru_cache(maxsize=2 * p.gap_max_days + 2)(field.clean)   # days recur in nearby pairs
    for k, (first, gap) in enumerate(zip(firsts.tolist(), gaps.tolist(), strict=True)):
        folder = out_dir / f"pair_{k:04d}"
        before, after = clean(first), clean(first + gap)
        field.write_day(first, folder, before)
        field.write_day(first + gap, folder, after)
        mask = change_mask(before, after, evaluated)
        seaice.write_geotiff(folder / MASK_NAME, mask, field.grid, nodata=NOT_EVALUATED, atomic=False)
    return {"synthetic": True, "generator": "nsidc_g02135_synthetic_pairs", "seed": seed, "pairs": p.n_pairs}


def copy_local_pairs(p: LocalParams, out_dir: Path) -> dict:
    pair_folders(local_source(p))   # checked before copying, so errors name the user's files
    return copy_local(p, None, out_dir)


def nsidc_pairs(p: IceChangeNsidcParams, out_dir: Path) -> dict:
    """Download the series, then one pair folder per (day, day + gap); the mask compares the observed
    maps at 15% where both days have a concentration (not land, coast, pole hole or missing)."""
    staging = out_dir / ".days"
    fields = download_series(p, staging)
    files = seaice.list_files(staging)

    @functools.cache
    def concentration(day: dt.date) -> tuple[np.ndarray, seaice.Grid]:   # a day serves in several pairs
        raw, grid = seaice.read_raw(files[day])
        return seaice.decode(raw)[0], grid

    count = 0
    for first in p.days[::p.stride_days]:
        for gap in p.gap_days:
            pair = first, first + dt.timedelta(days=gap)
            if not all(d in files for d in pair):
                continue
            (c1, grid), (c2, _) = (concentration(d) for d in pair)
            folder = out_dir / f"pair_{count:04d}"
            folder.mkdir()
            for d in pair:
                shutil.copyfile(files[d], folder / files[d].name)
            mask = change_mask(c1, c2, np.isfinite(c1) & np.isfinite(c2))
            seaice.write_geotiff(folder / MASK_NAME, mask, grid, nodata=NOT_EVALUATED)
            count += 1
    shutil.rmtree(staging)
    if count == 0:
        raise SeqpipeError(f"{p.base_url}: no pair of days {p.gap_days} apart between {p.start} and {p.end} "
                           "(download.nsidc.gap_days)")
    return {**fields, "pairs": count, "gap_days": p.gap_days, "stride_days": p.stride_days}


LOCAL_PATHS = ("local.path",)   # download keys naming the user's files: deps of the download stage
SOURCES = {"synthetic": lambda p, seed, out: write_pairs(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local_pairs(p.local, out),
           "http": lambda p, seed, out: download_http(p.http, out, pair_folders),
           "nsidc": lambda p, seed, out: nsidc_pairs(p.nsidc, out)}
