"""ice_change preprocess: pair folders -> (before, after) maps, change mask, valid pixels; split by date."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqpipe.data import seaice
from seqpipe.data.rasters import many_files, nodata_mask, require_whole_read
from seqpipe.data.series import chronological_split, save_splits
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


def read_pair(folder: Path) -> dict:
    """Both dates (checked to share one grid), their dates, and the change mask on that grid (the
    mask file's own nodata pixels are NOT_EVALUATED)."""
    import rasterio
    from rasterio.errors import RasterioError

    files = seaice.list_files(folder, ignore=(MASK_NAME,))
    (d1, p1), (d2, p2) = sorted(files.items())
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
    with many_files():
        pairs = [read_pair(folder) for folder in pair_folders(raw_dir)]
    for pair in pairs[1:]:
        if (diff := pair["grid"].difference(pairs[0]["grid"])) is not None:
            raise SeqpipeError(f"{pair['path']}: {diff} (of {pairs[0]['path']}); all pairs must "
                               "share one grid")
    first = min(pair["dates"][0] for pair in pairs)
    n_days = (max(pair["dates"][1] for pair in pairs) - first).days + 1
    ranges = chronological_split(n_days, p.val_fraction, p.test_fraction)
    arrays, counts = {}, {}
    for split, days in ranges.items():
        inside = [q for q in pairs if days.start <= (q["dates"][0] - first).days
                  and (q["dates"][1] - first).days < days.stop]     # both dates in the split's days
        if len(inside) < 2:
            raise SeqpipeError(f"{raw_dir}: the {split} split holds {len(inside)} pairs; add pairs")
        built = [pair_inputs(q["before"], q["after"]) for q in inside]
        arrays[f"x_{split}"] = np.stack([b[0] for b in built])
        arrays[f"mask_{split}"] = np.stack([b[1] & (q["mask"] != NOT_EVALUATED)
                                            for b, q in zip(built, inside, strict=True)])
        arrays[f"y_{split}"] = np.stack([(q["mask"] == 1).astype(np.float32) for q in inside])
        counts[split] = len(inside)
    train_valid = arrays["mask_train"]
    if not train_valid.any():
        raise SeqpipeError(f"{raw_dir}: no pixel of the train split is evaluated (every change mask pixel is "
                           f"{NOT_EVALUATED} or its file's nodata, or flagged in the maps); nothing "
                           "to learn from")
    positives = float(arrays["y_train"][train_valid].mean())
    return {"pairs": len(pairs), "pairs_per_split": counts,
            "dropped_across_splits": len(pairs) - sum(counts.values()),
            "map_shape": list(pairs[0]["grid"].shape), "crs": pairs[0]["grid"].crs.to_string(),
            "change_fraction_train": positives,
            "pos_weight": float(np.sqrt((1 - positives) / max(positives, 1e-6))),   # softened class balance
            "arrays": save_splits(out_dir, arrays)}
