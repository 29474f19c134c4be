"""bandwidth preprocess: windows of past metrics -> next-step targets, chronological split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.data.series import (RangeCheck, Standardizer, chronological_split, save_splits, sliding_windows,
                                 training_range)
from seqpipe.data.tables import read_timeseries_csv
from seqpipe.params import check
from seqpipe.pipelines.bandwidth import FILE_NAME


@dataclass(frozen=True)
class PreprocessParams:
    timestamp_column: str
    feature_columns: list[str]      # model inputs; must include every target column
    target_columns: list[str]
    window: int
    val_fraction: float
    test_fraction: float
    range_margin: float             # warn when val/test values lie this share of the training range beyond it

    def __post_init__(self) -> None:
        check(self.window >= 2, "window", f"must be >= 2, got {self.window}")
        check(len(self.target_columns) >= 1, "target_columns", "needs at least one column")
        missing = [c for c in self.target_columns if c not in self.feature_columns]
        check(not missing, "feature_columns", f"must include the target column(s) {', '.join(missing)}")
        check(len(set(self.feature_columns)) == len(self.feature_columns), "feature_columns", "has duplicates")
        check(0 < self.val_fraction < 0.5 and 0 < self.test_fraction < 0.5, "val_fraction",
              "val_fraction and test_fraction must each be in (0, 0.5)")
        check(self.range_margin >= 0, "range_margin",
              f"must be >= 0 (a share of the training range), got {self.range_margin}")

    def min_rows(self) -> int:
        """Enough rows for at least ten windows in the smallest split."""
        return self.window + int(np.ceil(10 / min(self.val_fraction, self.test_fraction)))


OUTSIDE = ("a network reading globally standardised windows extrapolates there (models.bandwidth.model."
           "normalisation: difference or revin reads each window relative to itself)")


def windows_from_frame(p: PreprocessParams, features: np.ndarray, scaler: Standardizer) -> np.ndarray:
    """(rows, features) in physical units -> (rows - window + 1, window, features) scaled."""
    return np.ascontiguousarray(sliding_windows(scaler.transform(features), p.window))


def preprocess(p: PreprocessParams, seed: int, raw_dir: Path, out_dir: Path) -> dict:
    path = raw_dir / FILE_NAME
    frame = read_timeseries_csv(path, p.timestamp_column, p.feature_columns, p.min_rows(),
                                f"models.bandwidth.preprocess.window {p.window} + 10 windows per val/test split")
    features = frame[p.feature_columns].to_numpy(np.float64)
    n_windows = len(frame) - p.window
    if n_windows < 30:
        raise SeqpipeError(f"{path}: {len(frame)} rows leave {n_windows} windows of {p.window}; too few")
    splits = chronological_split(n_windows, p.val_fraction, p.test_fraction)
    train_rows = splits["train"].stop + p.window          # rows seen by train windows and targets
    scaler = Standardizer.fit(features[:train_rows], str(path), p.feature_columns)  # data row = array row + 1
    windows = windows_from_frame(p, features, scaler)[:n_windows]
    target_index = [p.feature_columns.index(c) for c in p.target_columns]
    targets = scaler.transform(features)[p.window:, target_index]
    arrays = {}
    for split, rows in splits.items():
        arrays[f"x_{split}"] = windows[rows].astype(np.float32)
        arrays[f"y_{split}"] = targets[rows].astype(np.float32)
    train_range = training_range(features[:train_rows], p.feature_columns)
    ranges = RangeCheck(p.feature_columns, train_range, p.range_margin)
    for split in ("val", "test"):
        ranges.add(split, features[splits[split].start + p.window:splits[split].stop + p.window])
    outside = ranges.warn(str(path), OUTSIDE)
    cadence = float(frame[p.timestamp_column].diff().dt.total_seconds().median())
    return {"timestamp_column": p.timestamp_column, "feature_columns": p.feature_columns, "target_columns": p.target_columns,
            "target_index": target_index, "window": p.window, "scaler": scaler.to_dict(),
            "train_range": train_range, "range_margin": p.range_margin, "out_of_range": outside,
            "cadence_s": cadence, "rows": len(frame),
            "split_rows": {k: [v.start, v.stop] for k, v in splits.items()},
            "arrays": save_splits(out_dir, arrays)}
