"""ice_type preprocess: GeoTIFF patches + labels.csv -> per-band standardised arrays, stratified split."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.data.rasters import many_files, nodata_mask, require_whole_read
from seqpipe.data.series import SPLITS, npy_record
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import require_file, save_npy
from seqpipe.params import SplitFraction, params_section
from seqpipe.pipelines.ice_type.labels import CLASSES, LABELS_FILE, PATCH_DIR, read_labels

CHUNK = 1024   # patches read, reduced or standardised at a time


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


def read_patches(paths: list[Path], shape: tuple[int, ...] | None = None,
                 into: Path | None = None) -> tuple[np.ndarray, str | None]:
    """Stack patches that must all share one square (bands, size, size) shape (the first's, or `shape`),
    and the first's CRS where `shape` is not given. `into`: a .npy file the stack is written to a patch at
    a time and returned memory-mapped, so memory holds one patch, not the stack."""
    stack: np.ndarray | None = None
    crs = None
    with many_files():
        for k, path in enumerate(paths):
            image, patch_crs = read_patch(path)
            if shape is None:
                shape, crs = image.shape, patch_crs
                if shape[1] != shape[2]:
                    raise SeqpipeError(f"{path}: patch is {shape[1]}x{shape[2]}; patches must be square")
            if image.shape != tuple(shape):
                raise SeqpipeError(f"{path}: shape (bands, h, w) {image.shape} differs from {tuple(shape)}")
            if stack is None:
                size = (len(paths), *image.shape)
                stack = (np.empty(size, np.float32) if into is None
                         else np.lib.format.open_memmap(into, mode="w+", dtype=np.float32, shape=size))
            stack[k] = image
    if stack is None:
        raise SeqpipeError("no patches to read")
    return stack, crs


def band_moments(x: np.ndarray, rows: np.ndarray, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation of patches `rows` of (n, bands, h, w) `x`, read `chunk` patches
    at a time: the numbers numpy's x[rows].astype(float64).mean and .std over axes (0, 2, 3) give, bit
    for bit (each patch's band sums pairwise, then added patch after patch, as numpy's reduction does)."""
    def band_sums(fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return np.concatenate([fn(x[rows[k:k + chunk]].astype(np.float64)).reshape(
            min(chunk, len(rows) - k), x.shape[1], -1).sum(-1) for k in range(0, len(rows), chunk)]).sum(0)

    count = len(rows) * x.shape[2] * x.shape[3]
    mean = band_sums(lambda a: a) / count

    def squared(a: np.ndarray) -> np.ndarray:
        deviation = a - mean[None, :, None, None]
        return deviation * deviation
    return mean, np.sqrt(band_sums(squared) / count)


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
    """The patches read once into a memory-mapped stack beside the outputs, then each split standardised
    into its own file `CHUNK` patches at a time: memory holds a chunk, not the data."""
    labels = read_labels(raw_dir / LABELS_FILE, raw_dir / PATCH_DIR)
    y = labels["y"].to_numpy()
    splits = stratified_split(y, p.val_fraction, p.test_fraction, seed)
    counts = {s: np.bincount(y[idx], minlength=len(CLASSES)).tolist() for s, idx in splits.items()}
    stack = out_dir / "patches.npy"   # removed once the splits are written
    x, crs = read_patches([raw_dir / PATCH_DIR / f for f in labels["file"]], into=stack)
    for s, c in counts.items():
        empty = [CLASSES[k] for k in range(len(CLASSES)) if c[k] == 0]
        if empty:
            raise SeqpipeError(f"{raw_dir / LABELS_FILE}: no {', '.join(empty)} patch in the {s} split "
                               f"({len(y)} labelled patches); add patches or change the split fractions")
    band_mean, band_std = band_moments(x, splits["train"])
    stats = {"classes": CLASSES, "bands": int(x.shape[1]), "patch_size": int(x.shape[2]), "crs": crs,
             "band_mean": band_mean.tolist(),
             "band_std": np.where(band_std > 0, band_std, 1.0).tolist(),
             "class_counts": {s: dict(zip(CLASSES, c, strict=True)) for s, c in counts.items()},
             # inverse class frequency on the train split (n / (k * n_k)); the loss weighs by these
             "class_weights": (len(splits["train"]) / (len(CLASSES) * np.asarray(counts["train"]))).tolist()}
    for split, idx in splits.items():
        out = np.lib.format.open_memmap(out_dir / f"x_{split}.npy", mode="w+", dtype=np.float32,
                                        shape=(len(idx), *x.shape[1:]))
        for k in range(0, len(idx), CHUNK):
            out[k:k + CHUNK] = standardize(x[idx[k:k + CHUNK]], stats)
        out.flush()
        del out
        save_npy(out_dir / f"y_{split}.npy", y[idx].astype(np.int64))
    del x
    stack.unlink()
    stats["arrays"] = {f"{key}_{split}": npy_record(out_dir / f"{key}_{split}.npy")
                       for key in ("x", "y") for split in sorted(splits)}
    return stats
