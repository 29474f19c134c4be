"""ice_change preprocess: pair folders -> (before, after) maps, change mask, valid pixels; split by date,
written a pair at a time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from seqpipe.data import seaice
from seqpipe.data.rasters import many_files, nodata_mask, require_whole_read
from seqpipe.data.series import chronological_split, npy_record
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import require_file
from seqpipe.params import SplitFraction, params_section
from seqpipe.pipelines.ice_change.pairs import MASK_NAME, NOT_EVALUATED, pair_folders


@params_section
class PreprocessParams:
    val_fraction: SplitFraction
    test_fraction: SplitFraction


def pair_inputs(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw codes of two dates -> ((2, H, W) filled concentration, (H, W) pixels valid on both dates).

    Pole hole -> 1.0, land/coast -> 0; a pixel missing on one date takes the other date's value.
    """
    (c1, ocean1), (c2, ocean2) = seaice.decode(before), seaice.decode(after)
    pole = (before == seaice.POLE_HOLE) | (after == seaice.POLE_HOLE)
    valid = np.isfinite(c1) & np.isfinite(c2) & ocean1 & ocean2
    c1, c2 = np.where(np.isnan(c1), c2, c1), np.where(np.isnan(c2), c1, c2)
    maps = np.stack([c1, c2])
    maps = np.where(pole, 1.0, np.nan_to_num(maps, nan=0.0))
    return np.where(ocean1 & ocean2, maps, 0.0).astype(np.float32), valid


def pair_files(folder: Path) -> list[tuple[dt.date, Path]]:
    """The pair's two dated files, earlier first (named by date: nothing is read)."""
    return sorted(seaice.list_files(folder, ignore=(MASK_NAME,)).items())


def read_pair(folder: Path) -> dict:
    """Both dates (checked to share one grid), their dates, and the change mask on that grid (the
    mask file's own nodata pixels are NOT_EVALUATED)."""
    import rasterio
    from rasterio.errors import RasterioError

    (d1, p1), (d2, p2) = pair_files(folder)
    (before, grid), (after, grid2) = seaice.read_raw(p1), seaice.read_raw(p2)
    if (diff := grid2.difference(grid)) is not None:
        raise SeqpipeError(f"{p2}: {diff} (of {p1.name}); a pair must share one grid")
    mask_path = folder / MASK_NAME
    try:
        with rasterio.open(require_file(mask_path)) as src:
            require_whole_read(mask_path, src, 1)
            mask_grid, mask = seaice.Grid.of(src), src.read(1)
            mask = np.where(nodata_mask(src, 1, mask, mask_path), NOT_EVALUATED, mask.astype(np.int64))
    except RasterioError as exc:
        raise SeqpipeError(f"{mask_path}: cannot read GeoTIFF ({first_line(exc)})") from None
    if (diff := mask_grid.difference(grid)) is not None:
        raise SeqpipeError(f"{mask_path}: {diff} (of {p1.name}); the mask must share the pair's grid")
    if not np.isin(mask, (0, 1, NOT_EVALUATED)).all():
        raise SeqpipeError(f"{mask_path}: values must be 0, 1 or {NOT_EVALUATED}")
    return {"dates": (d1, d2), "before": before, "after": after, "mask": mask, "grid": grid, "path": p1}


def preprocess(p: PreprocessParams, seed: int, raw_dir: Path, out_dir: Path) -> dict:
    """Each split's arrays written into memory-mapped .npy files one pair at a time, the pairs read in
    folder order (each once), so memory holds one pair, not the data."""
    folders = pair_folders(raw_dir)
    dates = [tuple(d for d, _ in pair_files(folder)) for folder in folders]
    first = min(d1 for d1, _ in dates)
    n_days = (max(d2 for _, d2 in dates) - first).days + 1
    members: dict[str, list[int]] = {}
    for split, days in chronological_split(n_days, p.val_fraction, p.test_fraction).items():
        members[split] = [k for k, (d1, d2) in enumerate(dates)       # both dates in the split's days
                          if days.start <= (d1 - first).days and (d2 - first).days < days.stop]
        if len(members[split]) < 2:
            raise SeqpipeError(f"{raw_dir}: the {split} split holds {len(members[split])} pairs; add pairs")
    place = {k: (split, i) for split, ks in members.items() for i, k in enumerate(ks)}
    outputs: dict[str, np.memmap] = {}
    ones = evaluated = 0   # train: changed pixels among the evaluated ones, and those
    with many_files():
        for k, folder in enumerate(folders):
            pair = read_pair(folder)   # a pair dropped across splits is checked all the same
            if not outputs:
                reference, shape = pair, pair["grid"].shape
                outputs = _outputs(out_dir, {split: len(ks) for split, ks in members.items()}, shape)
            elif (diff := pair["grid"].difference(reference["grid"])) is not None:
                raise SeqpipeError(f"{pair['path']}: {diff} (of {reference['path']}); all pairs must "
                                   "share one grid")
            if k not in place:
                continue
            split, i = place[k]
            maps, valid = pair_inputs(pair["before"], pair["after"])
            mask, changed = valid & (pair["mask"] != NOT_EVALUATED), (pair["mask"] == 1).astype(np.float32)
            for key, value in (("x", maps), ("mask", mask), ("y", changed)):
                outputs[f"{key}_{split}"][i] = value
            if split == "train":
                ones += int(np.count_nonzero(changed[mask]))
                evaluated += int(np.count_nonzero(mask))
    for array in outputs.values():
        array.flush()
    if not evaluated:
        raise SeqpipeError(f"{raw_dir}: no pixel of the train split is evaluated (every change mask pixel is "
                           f"{NOT_EVALUATED} or its file's nodata, or flagged in the maps); nothing "
                           "to learn from")
    positives = float(np.float32(ones) / evaluated)   # as float32's mean over the train pixels gave it
    return {"pairs": len(folders), "pairs_per_split": {split: len(ks) for split, ks in members.items()},
            "dropped_across_splits": len(folders) - len(place),
            "map_shape": list(shape), "crs": reference["grid"].crs.to_string(),
            "change_fraction_train": positives,
            "pos_weight": float(np.sqrt((1 - positives) / max(positives, 1e-6))),   # softened class balance
            "arrays": {name: npy_record(out_dir / f"{name}.npy") for name in sorted(outputs)}}


def _outputs(out_dir: Path, counts: dict[str, int], shape: tuple[int, int]) -> dict[str, np.memmap]:
    """Each split's x (pairs, 2, H, W) float32, mask (pairs, H, W) bool and y (pairs, H, W) float32, as
    .npy files in `out_dir` memory-mapped for writing."""
    layout = {"x": ((2, *shape), np.float32), "mask": (shape, np.bool_), "y": (shape, np.float32)}
    return {f"{key}_{split}": np.lib.format.open_memmap(out_dir / f"{key}_{split}.npy", mode="w+",
                                                        dtype=dtype, shape=(n, *sample))
            for split, n in counts.items() for key, (sample, dtype) in layout.items()}
