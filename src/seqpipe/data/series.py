"""Time-series helpers: sliding windows, chronological splits, train-only scaling, split I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.io import load_npy, save_npy, sha256_file

SPLITS = ("train", "val", "test")


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """(time, features) -> (time - window + 1, window, features) as a read-only view."""
    return np.lib.stride_tricks.sliding_window_view(values, window, axis=0).transpose(0, 2, 1)


def chronological_split(n: int, val_fraction: float, test_fraction: float) -> dict[str, slice]:
    """Contiguous train / val / test ranges in time order (no shuffling across time)."""
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    return {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val),
            "test": slice(n_train + n_val, n)}


class Standardizer:
    """Per-column mean/std fitted on the train split only; stored as plain lists in stats.json."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)

    @classmethod
    def fit(cls, values: np.ndarray, source: str = "train values", columns: list[str] | None = None) -> Standardizer:
        """Mean/std of each column of (rows, columns) `values`; a non-finite one (NaN, or a sum that
        overflows) is refused naming `source`, the column and the row of its largest value."""
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = values.mean(axis=0), values.std(axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            column = values[:, k].astype(np.float64)
            row = int(np.nanargmax(np.abs(column))) if not np.isnan(column).all() else 0
            name = repr(columns[k]) if columns else str(k)
            raise SeqpipeError(f"{source}: column {name}: mean/std are not finite (a NaN, or an overflow in "
                               f"{values.dtype}; largest |value| {column[row]:.3g} at data row {row + 1}); "
                               "rescale or remove it")
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Standardizer:
        return cls(np.array(data["mean"]), np.array(data["std"]))


def save_splits(out_dir: Path, arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """Write `<name>.npy` files (e.g. x_train, y_test); returns shape/dtype/sha256 for stats.json."""
    described = {}
    for name, array in sorted(arrays.items()):
        path = out_dir / f"{name}.npy"
        save_npy(path, array)
        described[name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                           "sha256": sha256_file(path)}
    return described


def load_split(data_dir: Path, split: str) -> dict[str, np.ndarray]:
    """Every `<key>_<split>.npy` of a processed folder, keyed without the suffix: {'x': ..., 'y': ...}."""
    suffix = f"_{split}.npy"
    return {p.name[: -len(suffix)]: load_npy(p) for p in sorted(data_dir.glob(f"*{suffix}"))}

