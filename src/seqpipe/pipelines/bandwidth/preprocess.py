"""bandwidth preprocess: the standardised metrics stored once; windows of past metrics -> next-step targets
cut from them on demand (seqpipe.data.windows), their starts split in time order."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from seqpipe.baselines import season_from_cadence
from seqpipe.data.series import (
    MAX_AUTO_HOLDOUT,
    RangeCheck,
    Standardizer,
    auto_batch_size,
    auto_holdout_fraction,
    auto_window,
    cadence_text,
    chronological_split,
    detect_cadence,
    off_cadence,
    save_splits,
    training_range,
)
from seqpipe.data.tables import read_timeseries_csv
from seqpipe.data.windows import cut, stored_arrays
from seqpipe.errors import SeqpipeError
from seqpipe.params import AUTO, Length, Range, SplitFraction, check, check_size, params_section
from seqpipe.pipelines.bandwidth import FILE_NAME, OUTSIDE_TRAINING

log = logging.getLogger(__name__)


MAX_WINDOW_VALUES = 2**20   # window x feature columns: one sample the network reads


@params_section
class PreprocessParams:
    timestamp_column: str
    feature_columns: Annotated[list[str], Length(1, 1000)]   # model inputs; must include every target column
    target_columns: Annotated[list[str], Length(1, 1000)]
    # auto: one season plus one step, within bounds (data.series.auto_window)
    window: Annotated[int, Range(2, 100_000)] | AUTO
    # auto: 15%, more for a season or ten windows (data.series.auto_holdout_fraction)
    val_fraction: SplitFraction | AUTO
    test_fraction: SplitFraction | AUTO
    # warn when val/test values lie this share of the training range beyond it
    range_margin: Annotated[float, Range(0, 100, note="a share of the training range")]

    def __post_init__(self) -> None:
        missing = [c for c in self.target_columns if c not in self.feature_columns]
        check(not missing, "feature_columns", f"must include the target column(s) {', '.join(missing)}")
        check(len(set(self.feature_columns)) == len(self.feature_columns), "feature_columns",
              "has duplicates")
        if self.window != "auto":
            check_size("window", self.window * len(self.feature_columns), MAX_WINDOW_VALUES,
                       "one sample's values (window x feature_columns)")


@dataclass(frozen=True)
class Resolved:
    """The window, split and season a series gets: the params' numbers, or (auto) what its data gives."""

    window: int
    val_fraction: float
    test_fraction: float
    season_steps: int
    cadence_s: float
    business_days: bool
    smallest_fraction: float   # the smallest val/test fraction at any row count: an `auto` one rises to 0.3

    def min_rows(self) -> int:
        """Enough rows for at least ten windows in the smallest split."""
        return self.window + int(np.ceil(10 / self.smallest_fraction))


def resolve(p: PreprocessParams, stamps: np.ndarray) -> Resolved:
    """Cadence and season from the timestamps, then every `auto` key from them and the row count."""
    cadence, business = detect_cadence(stamps)
    season = 5 if business else season_from_cadence(cadence)
    if 2 * season > 0.7 * len(stamps):   # the training rows would not hold two seasons: none is observable
        season = 1
    window = auto_window(season, len(stamps)) if p.window == "auto" else p.window
    holdout = auto_holdout_fraction(season, len(stamps) - window)
    given = [MAX_AUTO_HOLDOUT if f == "auto" else f for f in (p.val_fraction, p.test_fraction)]
    return Resolved(window=window, season_steps=season, cadence_s=cadence, business_days=business,
                    val_fraction=holdout if p.val_fraction == "auto" else p.val_fraction,
                    test_fraction=holdout if p.test_fraction == "auto" else p.test_fraction,
                    smallest_fraction=min(given))


def preprocess(p: PreprocessParams, seed: int, raw_dir: Path, out_dir: Path) -> dict:
    path = raw_dir / FILE_NAME
    frame = read_timeseries_csv(path, p.timestamp_column, p.feature_columns, 3, "to find the cadence")
    stamps = frame[p.timestamp_column].dt.tz_localize(None).to_numpy()
    r = resolve(p, stamps)
    cadence = cadence_text(r.cadence_s, r.business_days)
    if (problem := off_cadence(stamps, r.cadence_s, r.business_days)) is not None:
        row, why = problem
        raise SeqpipeError(f"{path}: data row {row + 1} {why}; the series' cadence (its median step) "
                           f"is {cadence} and a window must hold consecutive steps of it: fill or "
                           "interpolate the missing rows, or cut the file at that row")
    if len(frame) < r.min_rows():
        raise SeqpipeError(f"{path}: {len(frame)} data rows, need at least {r.min_rows()} (models.bandwidth."
                           f"preprocess.window {r.window} + 10 windows per val/test split)")
    features = frame[p.feature_columns].to_numpy(np.float64)
    n_windows = len(frame) - r.window
    if n_windows < 30:
        raise SeqpipeError(f"{path}: {len(frame)} rows leave {n_windows} windows of {r.window}; too few")
    splits = chronological_split(n_windows, r.val_fraction, r.test_fraction)
    train_rows = splits["train"].stop + r.window          # rows seen by train windows and targets
    scaler = Standardizer.fit(features[:train_rows], str(path), p.feature_columns)  # data row = array row + 1
    scaled = scaler.transform(features)   # float32: stored once, window i being rows i .. i + window - 1
    target_index = [p.feature_columns.index(c) for c in p.target_columns]
    windows = {"x": cut("features", 0, r.window), "y": cut("features", r.window, None, columns=target_index)}
    starts = {split: np.arange(rows.start, rows.stop) for split, rows in splits.items()}
    train_range = training_range(features[:train_rows], p.feature_columns)
    ranges = RangeCheck(p.feature_columns, train_range, p.range_margin)
    for split in ("val", "test"):
        ranges.add(split, features[splits[split].start + r.window:splits[split].stop + r.window])
    outside = ranges.warn(str(path), OUTSIDE_TRAINING)
    given = {"window": p.window, "val_fraction": p.val_fraction, "test_fraction": p.test_fraction}
    resolved: dict[str, Any] = {
        "window": r.window, "val_fraction": r.val_fraction, "test_fraction": r.test_fraction,
        "season_steps": r.season_steps, "batch_size": auto_batch_size(splits["train"].stop),
        "from_data": [k for k, v in given.items() if v == "auto"]}
    log.info("preprocess bandwidth: %s cadence, season %d steps; window %d, val/test fractions %.3g/%.3g, "
             "train batch size %d if auto (%s from the data)", cadence, r.season_steps, r.window,
             r.val_fraction, r.test_fraction, resolved["batch_size"],
             ", ".join(resolved["from_data"]) or "none")
    return {"timestamp_column": p.timestamp_column, "feature_columns": p.feature_columns,
            "target_columns": p.target_columns, "target_index": target_index, "window": r.window,
            "scaler": scaler.to_dict(), "train_range": train_range, "range_margin": p.range_margin,
            "out_of_range": outside, "cadence_s": r.cadence_s, "business_days": r.business_days,
            "season_steps": r.season_steps, "resolved": resolved, "rows": len(frame),
            "split_rows": {k: [v.start, v.stop] for k, v in splits.items()}, "windows": windows,
            "arrays": save_splits(out_dir, stored_arrays({"features": scaled}, starts))}
