"""ice_type preprocess: GeoTIFF patches + labels.csv -> per-band standardised arrays, stratified split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.rasters import many_files, nodata_mask, require_whole_read
from seqpipe.data.series import SPLITS, save_splits
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import require_file
from seqpipe.params import SplitFraction, params_section
from seqpipe.pipelines.ice_type.labels import CLASSES, LABELS_FILE, PATCH_DIR, read_labels


@params_section
class PreprocessParams:
    val_fraction: SplitFraction    # of each class (stratified), drawn with the global seed
    test_fraction: SplitFraction


def read_patch(path: Path) -> tuple[np.ndarray, str | None]:
    """One GeoTIFF as float32 (bands, h, w) and its CRS string. Refused with one line naming the file:
    unreadable, too large to read whole (checked from the header first), any pixel the file's own
    nodata value or mask marks (a patch is classified whole), NaN/inf or beyond float32."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(require_file(path)) as src:
            require_whole_read(path, src)
            raw = src.read()
            nodata = sum(int(nodata_mask(src, b + 1, band, path).sum()) for b, band in enumerate(raw))
            crs = src.crs.to_string() if src.crs else None
    except (RasterioError, OSError) as exc:
        raise SeqpipeError(f"{path}: unreadable GeoTIFF ({first_line(exc)})") from None
    if nodata:
        raise SeqpipeError(f"{path}: {nodata} nodata pixel(s) (the file's nodata value or mask); a "
                           "patch needs data in every pixel of every band: crop it or leave it out")
    with np.errstate(over="ignore"):
        image = raw.astype(np.float32)
    if not np.isfinite(image).all():
        raise SeqpipeError(f"{path}: {int((~np.isfinite(image)).sum())} NaN/inf pixel(s) (or values "
                           "beyond float32)")
    return image, crs


def read_patches(paths: list[Path], shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, str | None]:
    """Stack patches that must all share one square (bands, size, size) shape (the first's, or `shape`)."""
    images, crs = [], None
    with many_files():
        for path in paths:
            image, patch_crs = read_patch(path)
            if shape is None:
                shape, crs = image.shape, patch_crs
                if shape[1] != shape[2]:
                    raise SeqpipeError(f"{path}: patch is {shape[1]}x{shape[2]}; patches must be square")
            if image.shape != tuple(shape):
                raise SeqpipeError(f"{path}: shape (bands, h, w) {image.shape} differs from {tuple(shape)}")
            images.append(image)
    return np.stack(images), crs


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int) -> dict[str, np.ndarray]:
    """Sorted indices per split; each class is split in the same proportions."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for k in range(len(CLASSES)):
        members = rng.permutation(np.flatnonzero(y == k))
        n_test, n_val = int(round(len(members) * test_fraction)), int(round(len(members) * val_fraction))
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test:n_test + n_val])
        parts["train"].append(members[n_test + n_val:])
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def standardize(x: np.ndarray, stats: Mapping[str, Any]) -> np.ndarray:
    """Raw patches (n, bands, h, w) -> per-band standardised float32 with the train split's mean/std."""
    mean = np.asarray(stats["band_mean"], np.float32)[None, :, None, None]
    std = np.asarray(stats["band_std"], np.float32)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32)


def preprocess(p: PreprocessParams, seed: int, raw_dir: Path, out_dir: Path) -> dict:
    labels = read_labels(raw_dir / LABELS_FILE, raw_dir / PATCH_DIR)
    y = labels["y"].to_numpy()
    x, crs = read_patches([raw_dir / PATCH_DIR / f for f in labels["file"]])
    splits = stratified_split(y, p.val_fraction, p.test_fraction, seed)
    counts = {s: np.bincount(y[idx], minlength=len(CLASSES)).tolist() for s, idx in splits.items()}
    for s, c in counts.items():
        empty = [CLASSES[k] for k in range(len(CLASSES)) if c[k] == 0]
        if empty:
            raise SeqpipeError(f"{raw_dir / LABELS_FILE}: no {', '.join(empty)} patch in the {s} split "
                               f"({len(y)} labelled patches); add patches or change the split fractions")
    train_x = x[splits["train"]].astype(np.float64)
    band_std = train_x.std(axis=(0, 2, 3))
    stats = {"classes": CLASSES, "bands": int(x.shape[1]), "patch_size": int(x.shape[2]), "crs": crs,
             "band_mean": train_x.mean(axis=(0, 2, 3)).tolist(),
             "band_std": np.where(band_std > 0, band_std, 1.0).tolist(),
             "class_counts": {s: dict(zip(CLASSES, c, strict=True)) for s, c in counts.items()},
             # inverse class frequency on the train split (n / (k * n_k)); the loss weighs by these
             "class_weights": (len(splits["train"]) / (len(CLASSES) * np.asarray(counts["train"]))).tolist()}
    x = standardize(x, stats)
    arrays = {}
    for split, idx in splits.items():
        arrays[f"x_{split}"] = np.ascontiguousarray(x[idx])
        arrays[f"y_{split}"] = y[idx].astype(np.int64)
    stats["arrays"] = save_splits(out_dir, arrays)
    return stats
