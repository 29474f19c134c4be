"""`seqpipe predict bandwidth`: next-step forecasts for every full window of a metrics CSV.

`predict_array` is the array core (`seqpipe.load("bandwidth").predict`); `predict` reads the CSV,
calls it and writes the forecast CSV.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqpipe.data.series import Standardizer, sliding_windows
from seqpipe.data.tables import read_timeseries_csv
from seqpipe.networks import predict_batches
from seqpipe.plotting import write_csv
from seqpipe.params import Params
from seqpipe.stages.predict import range_check, table_values, warn_outside_training

INPUTS = ("data: a DataFrame with the trained feature columns (stats['feature_columns']; others ignored) "
          "or an array [rows, features] in that order, rows in time order at the trained cadence, at least "
          "stats['window'] rows -> array [rows - window + 1, targets] (stats['target_columns']): row i "
          "forecasts the step after rows [i, i + window)")


def predict_array(network: nn.Module, payload: dict, data: Any, source: str = "data") -> np.ndarray:
    """Row i of the result forecasts the step after input rows [i, i + window), in the target units.
    Logs a warning per column with rows beyond the training range (`source` names the input there)."""
    stats = payload["stats"]
    window = stats["window"]
    values = table_values(data, stats["feature_columns"], "data", window, "the model's window")
    if (ranges := range_check(payload, stats["feature_columns"])) is not None:
        ranges.add("input", values)
        warn_outside_training(ranges, payload, source)
    scaler = Standardizer.from_dict(stats["scaler"])
    x = np.ascontiguousarray(sliding_windows(scaler.transform(values), window))
    scaled = predict_batches(network, torch.from_numpy(x), 4096)
    index = stats["target_index"]
    return scaled * scaler.std[index] + scaler.mean[index]


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> str:
    """Read the CSV, forecast every full window, write timestamp + one column per target."""
    input_path, output_path = Path(args.input), args.output
    stats = payload["stats"]
    window, features, targets = stats["window"], stats["feature_columns"], stats["target_columns"]
    frame = read_timeseries_csv(input_path, stats["timestamp_column"], features, window)
    forecast = predict_array(network, payload, frame[features].to_numpy(), source=str(input_path))
    stamps = frame[stats["timestamp_column"]].iloc[window - 1:] + pd.to_timedelta(stats["cadence_s"], unit="s")
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    write_csv(output_path, {"timestamp": text, **{t: forecast[:, k] for k, t in enumerate(targets)}},
              float_format="%.4f")
    return (f"wrote {output_path}: {len(forecast)} forecast rows ({text[0]} to {text[-1]}), one per "
            f"{window}-row window of the {len(frame)} input rows, {len(targets)} targets; nothing masked")
