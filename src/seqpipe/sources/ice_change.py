"""Sources for ice_change: pairs of G02135 rasters (t1, t2) with a change mask, synthetic or local.

Layout of the raw folder (and of a `local` folder): one sub-folder per pair holding the two dated
G02135 files (the earlier is `before`) and `change_mask.tif`: uint8 on the same grid, 1 where the
ice edge moved across the pixel (concentration crossed 15%: melt, freeze-up or drift), 0 where it
did not, 255 (nodata) on land, coast and the pole hole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from seqpipe import SeqpipeError
from seqpipe.data import seaice
from seqpipe.params import check
from seqpipe.sources.local import LocalParams, copy_local
from seqpipe.sources.nsidc_synthetic import IceField, SeaIceSyntheticParams

MASK_NAME = "change_mask.tif"
NOT_EVALUATED = 255


@dataclass(frozen=True)
class IceChangeSyntheticParams:
    field: SeaIceSyntheticParams    # the concentration series the pairs are drawn from
    n_pairs: int
    gap_min_days: int
    gap_max_days: int

    def __post_init__(self) -> None:
        check(self.n_pairs >= 10, "n_pairs", "must be >= 10")
        check(1 <= self.gap_min_days <= self.gap_max_days, "gap_min_days", "need 1 <= gap_min_days <= gap_max_days")
        check(self.gap_max_days < self.field.n_days, "gap_max_days", "must be below field.n_days")


@dataclass(frozen=True)
class IceChangeDownloadParams:
    source: Literal["synthetic", "local"]
    synthetic: IceChangeSyntheticParams
    local: LocalParams   # a folder of pair folders laid out as above


def write_pairs(p: IceChangeSyntheticParams, seed: int, out_dir: Path) -> dict:
    """`n_pairs` pair folders in date order; the mask compares the noise-free fields at 15%."""
    field = IceField(p.field, seed)
    rng = np.random.default_rng([seed, 1, 2])
    firsts = np.sort(rng.integers(0, p.field.n_days - p.gap_max_days, p.n_pairs))
    gaps = rng.integers(p.gap_min_days, p.gap_max_days + 1, p.n_pairs)
    evaluated = (field.flags == 0)
    for k, (first, gap) in enumerate(zip(firsts.tolist(), gaps.tolist())):
        folder = out_dir / f"pair_{k:04d}"
        field.write_day(first, folder)
        field.write_day(first + gap, folder)
        change = (field.clean(first) >= 0.15) != (field.clean(first + gap) >= 0.15)
        mask = np.where(evaluated, change, NOT_EVALUATED).astype(np.uint8)
        seaice.write_geotiff(folder / MASK_NAME, mask, field.grid, nodata=NOT_EVALUATED)
    return {"synthetic": True, "generator": "nsidc_g02135_synthetic_pairs", "seed": seed, "pairs": p.n_pairs}


def pair_folders(folder: Path) -> list[Path]:
    """The pair sub-folders of a raw or local folder, each checked for two dated files and a mask."""
    pairs = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    if not pairs:
        raise SeqpipeError(f"{folder}: no pair folders (each holds two G02135 files and {MASK_NAME})")
    for pair in pairs:
        if not (pair / MASK_NAME).exists():
            raise SeqpipeError(f"{pair / MASK_NAME}: missing (each pair folder needs its change mask)")
        if len(seaice.list_files(pair, ignore=(MASK_NAME,))) != 2:
            raise SeqpipeError(f"{pair}: needs exactly two G02135 files (before and after)")
    return pairs


def copy_local_pairs(p: LocalParams, out_dir: Path) -> dict:
    fields = copy_local(p, None, out_dir)
    pair_folders(out_dir)
    return fields


SOURCES = {"synthetic": lambda p, seed, out: write_pairs(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local_pairs(p.local, out)}
