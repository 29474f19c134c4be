"""`seqpipe predict bandwidth`: next-step forecasts for every full window of a metrics CSV.

`predict_array` is the array core (`seqpipe.load("bandwidth").predict`); `predict` reads the CSV,
calls it and writes the forecast CSV.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from seqpipe.conformal import interval_bounds, level_label
from seqpipe.data.series import Standardizer, cadence_text, off_cadence, sliding_windows, window_io
from seqpipe.data.tables import read_timeseries_csv
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.networks import predict_batches
from seqpipe.params import Params
from seqpipe.pipelines.bandwidth import OUTSIDE_TRAINING, BandwidthStats, unit
from seqpipe.plotting import write_csv
from seqpipe.spec import IODescription
from seqpipe.stages.predict import (
    PredictInputError,
    range_check,
    require_finite_computed,
    table_values,
    warn_outside_training,
)

if TYPE_CHECKING:
    from seqpipe.networks.forecaster import LinearResidualLSTM

INPUTS = ("data: a DataFrame with the trained feature columns (stats['feature_columns']; others ignored) "
          "or an array [rows, features] in that order, rows in time order at the trained cadence "
          "(stats['cadence_s'], or business days where stats['business_days']) without gaps, "
          "checked where the DataFrame has the timestamp column (stats['timestamp_column']), at least "
          "stats['window'] rows -> (forecast, intervals): forecast is an array [rows - window + 1, targets] "
          "(stats['target_columns']) whose row i forecasts the step after rows [i, i + window); "
          "intervals maps each nominal level (0.8, 0.95 by default) to (lower, upper), arrays shaped like "
          "forecast: the split-conformal prediction interval calibrated on the validation split")


def predict_array(network: LinearResidualLSTM, payload: dict, data: Any,
                  source: str = "data") -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
    """(forecast, {level: (lower, upper)}): row i forecasts the step after input rows [i, i + window), in
    the target units, with its prediction intervals. Logs a warning per column with rows beyond the
    training range (`source` names the input there)."""
    stats: BandwidthStats = payload["stats"]
    window = stats["window"]
    if isinstance(data, pd.DataFrame) and stats["timestamp_column"] in data.columns:
        _check_stamps(data[stats["timestamp_column"]], stats)
    values = table_values(data, stats["feature_columns"], "data", window, "the model's window")
    scaler = Standardizer.from_dict(stats["scaler"])
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = scaler.transform(values)
    require_finite_computed(scaled, values, "data", "standardised with the training mean and std")
    if (ranges := range_check(payload, stats["feature_columns"])) is not None:
        ranges.add("input", values)
        warn_outside_training(ranges, payload, source, OUTSIDE_TRAINING)
    x = np.ascontiguousarray(sliding_windows(scaled, window))
    scaled = predict_batches(network, torch.from_numpy(x), 4096)
    index = stats["target_index"]
    forecast = scaled * scaler.std[index] + scaler.mean[index]
    bounds = interval_bounds(forecast, network.halfwidth.numpy() * scaler.std[index])
    return forecast, {level: (bounds[i, 0], bounds[i, 1]) for i, level in enumerate(network.interval_levels)}


def _check_stamps(column: pd.Series, stats: BandwidthStats) -> None:
    """A DataFrame's timestamp column: parseable and at the trained cadence without gaps, or a
    PredictInputError."""
    name = stats["timestamp_column"]
    try:
        stamps = pd.to_datetime(column, utc=True, format="ISO8601")
    except (TypeError, ValueError) as exc:
        raise PredictInputError(f"data: column {name!r} holds an unparseable timestamp "
                                f"({first_line(exc)})") from None
    if stamps.isna().any():
        raise PredictInputError(f"data: column {name!r} has no time at index "
                                f"{int(np.flatnonzero(stamps.isna())[0])}")
    if (problem := _off_trained_cadence(stamps, stats)) is not None:
        raise PredictInputError(f"data: row {problem[0]} (column {name!r}) {problem[1]}; "
                                f"{_trained_cadence(stats)}")


def _off_trained_cadence(stamps: pd.Series, stats: BandwidthStats) -> tuple[int, str] | None:
    """The first of the UTC `stamps` off the cadence the model was trained at (see series.off_cadence)."""
    return off_cadence(stamps.dt.tz_localize(None).to_numpy(), stats["cadence_s"],
                       stats.get("business_days", False))


def _trained_cadence(stats: BandwidthStats) -> str:
    cadence = cadence_text(stats["cadence_s"], stats.get("business_days", False))
    return (f"the model was trained at a cadence of {cadence} and reads each window as consecutive "
            "steps of it: give rows at that cadence without gaps (resample, or cut the input at that row)")


def predict(network: LinearResidualLSTM, payload: dict, args: Namespace, params: Params) -> str:
    """Read the CSV, forecast every full window, write timestamp + one column per target."""
    input_path, output_path = Path(args.input), args.output
    stats: BandwidthStats = payload["stats"]
    window, features, targets = stats["window"], stats["feature_columns"], stats["target_columns"]
    frame = read_timeseries_csv(input_path, stats["timestamp_column"], features, window)
    if (problem := _off_trained_cadence(frame[stats["timestamp_column"]], stats)) is not None:
        raise SeqpipeError(f"{input_path}: data row {problem[0] + 1} {problem[1]}; {_trained_cadence(stats)}")
    forecast, intervals = predict_array(network, payload, frame[features].to_numpy(), source=str(input_path))
    step = pd.offsets.BDay(1) if stats.get("business_days") else pd.to_timedelta(stats["cadence_s"], unit="s")
    stamps = frame[stats["timestamp_column"]].iloc[window - 1:] + step
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    columns = {"timestamp": text}
    for k, t in enumerate(targets):
        columns[t] = forecast[:, k]
        for level, (lower, upper) in intervals.items():
            columns[f"{t}_lower_{level_label(level)}"] = lower[:, k]
            columns[f"{t}_upper_{level_label(level)}"] = upper[:, k]
    write_csv(output_path, columns, float_format="%.4f")
    levels = " and ".join(f"{level:.0%}" for level in intervals)
    return (f"wrote {output_path}: {len(forecast)} forecast rows ({text[0]} to {text[-1]}), one per "
            f"{window}-row window of the {len(frame)} input rows, {len(targets)} targets with {levels} "
            "prediction intervals; nothing masked")


def describe_io(stats: BandwidthStats, x: str, y: str) -> IODescription:
    """What the exported network reads and returns (`seqpipe export`), `x` and `y` its shapes."""
    units = {c: u for c in stats["feature_columns"] if (u := unit(c))}
    return window_io(stats, stats["target_index"], x, y, units)
