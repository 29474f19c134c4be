"""`seqpipe predict freq_filter`: filter a signal CSV into one column per frequency.

`predict_array` is the array core (`seqpipe.load("freq_filter").predict`); `predict` reads the CSV,
calls it and writes the filtered CSV.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqpipe.errors import SeqpipeError
from seqpipe.data.tables import read_csv_with_columns
from seqpipe.plotting import write_csv
from seqpipe.params import Params
from seqpipe.stages.predict import table_values
from seqpipe.pipelines.freq_filter.preprocess import make_inputs

INPUTS = ("signal: a DataFrame with a `signal` column or an array [samples] (or [samples, 1]), sampled at "
          "stats['sample_rate_hz'] -> array [samples, frequencies]: column k is the component at "
          "stats['frequencies_hz'][k]")


def predict_array(network: nn.Module, payload: dict, signal: Any) -> np.ndarray:
    """The signal filtered once per trained frequency: [samples, frequencies] float32."""
    values = table_values(signal, ["signal"], "signal")[:, 0].astype(np.float32)
    n = len(payload["stats"]["frequencies_hz"])
    x = make_inputs(np.repeat(values[None, :], n, axis=0), np.arange(n), n)
    with torch.inference_mode():
        filtered = network(torch.from_numpy(np.ascontiguousarray(x)))[..., 0].numpy()
    return np.ascontiguousarray(filtered.T)


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> str:
    """Input: a CSV with a `signal` column sampled at the training rate. Output: `<f>hz` columns."""
    input_path, output_path = Path(args.input), args.output
    frame = read_csv_with_columns(input_path, ["signal"])
    signal = pd.to_numeric(frame["signal"], errors="coerce").to_numpy(np.float32)
    if len(signal) == 0:
        raise SeqpipeError(f"{input_path}: no data rows")
    if not np.isfinite(signal).all():
        raise SeqpipeError(f"{input_path}: column 'signal' has NaN, inf or non-numeric values")
    filtered = predict_array(network, payload, signal)
    names = [f"{f:g}hz" for f in payload["stats"]["frequencies_hz"]]
    write_csv(output_path, {"signal": signal, **{name: filtered[:, k] for k, name in enumerate(names)}})
    rate = payload["stats"].get("sample_rate_hz")
    at = f" at {rate:g} Hz" if rate else ""
    return (f"wrote {output_path}: {len(signal)} samples{at}, the signal and {len(names)} filtered columns "
            f"({', '.join(names)}); nothing masked")
