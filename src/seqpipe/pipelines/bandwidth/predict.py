"""`seqpipe predict bandwidth`: next-step forecasts for every full window of a metrics CSV."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqpipe.data.series import Standardizer, sliding_windows
from seqpipe.data.tables import read_timeseries_csv
from seqpipe.networks import predict_batches
from seqpipe.plotting import write_csv
from seqpipe.params import Params
from seqpipe.stages.predict import require_input


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> Path:
    """Row i of the output forecasts the step after input rows [i, i + window)."""
    input_path, output_path = require_input(args), args.output
    stats = payload["stats"]
    window, features, targets = stats["window"], stats["feature_columns"], stats["target_columns"]
    frame = read_timeseries_csv(input_path, stats["timestamp_column"], features, window)
    scaler = Standardizer.from_dict(stats["scaler"])
    x = np.ascontiguousarray(sliding_windows(scaler.transform(frame[features].to_numpy()), window))
    scaled = predict_batches(network, torch.from_numpy(x), 4096)
    index = stats["target_index"]
    forecast = scaled * scaler.std[index] + scaler.mean[index]
    stamps = frame[stats["timestamp_column"]].iloc[window - 1:] + pd.to_timedelta(stats["cadence_s"], unit="s")
    write_csv(output_path, {"timestamp": stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(),
                            **{t: forecast[:, k] for k, t in enumerate(targets)}}, float_format="%.4f")
    return output_path
