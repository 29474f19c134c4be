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

from seqpipe.data.series import off_cadence
from seqpipe.data.tables import numeric_column, read_csv_with_columns
from seqpipe.errors import SeqpipeError
from seqpipe.params import Params
from seqpipe.pipelines.freq_filter import FreqFilterStats
from seqpipe.pipelines.freq_filter.preprocess import make_inputs
from seqpipe.plotting import write_csv
from seqpipe.spec import IODescription
from seqpipe.stages.predict import PredictInputError, table_values

INPUTS = ("signal: a DataFrame with a `signal` column or an array [samples] (or [samples, 1]), sampled at "
          "stats['sample_rate_hz'] without gaps (checked where the DataFrame has a `time_s` column in "
          "seconds or a `timestamp` column in ISO 8601) -> array [samples, frequencies]: column k is the "
          "component at stats['frequencies_hz'][k]")


TIME_COLUMNS = ("time_s", "timestamp")   # seconds, or ISO 8601 times: checked against the training rate


def time_axis_problem(frame: pd.DataFrame, rate_hz: float | None) -> tuple[str, int, str] | None:
    """(column, row, what is wrong) for the first sample of `frame`'s time column (`time_s` in seconds or
    `timestamp` in ISO 8601, if it has one) that is not one sample period after the one before: another
    sampling rate, a gap, a time that does not parse or goes backwards. None when fine or without one."""
    column = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    if column is None or rate_hz is None:
        return None
    if column == "time_s":
        times = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
        bad, what = ~np.isfinite(times), "a number of seconds"
    else:
        stamps = pd.to_datetime(frame[column], errors="coerce", utc=True, format="ISO8601")
        times, bad, what = (stamps.dt.tz_localize(None).to_numpy(), stamps.isna().to_numpy(),
                            "an ISO 8601 time")
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        return column, row, f"holds {frame[column].iloc[row]!r}, not {what}"
    problem = off_cadence(times, 1.0 / rate_hz)
    if problem is None:
        return None
    return column, problem[0], (f"{problem[1]}; the model was trained on samples {1.0 / rate_hz:g} s apart "
                                f"({rate_hz:g} Hz) without gaps: resample the signal, or cut it at that row")


def predict_array(network: nn.Module, payload: dict, signal: Any) -> np.ndarray:
    """The signal filtered once per trained frequency: [samples, frequencies] float32."""
    rate = payload["stats"].get("sample_rate_hz")
    if isinstance(signal, pd.DataFrame) and (problem := time_axis_problem(signal, rate)) is not None:
        column, row, why = problem
        raise PredictInputError(f"signal: row {row} (column {column!r}) {why}")
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
    if (problem := time_axis_problem(frame, payload["stats"].get("sample_rate_hz"))) is not None:
        column, row, why = problem
        raise SeqpipeError(f"{input_path}: column {column!r} at data row {row + 1} {why}")
    if len(frame) == 0:
        raise SeqpipeError(f"{input_path}: no data rows")
    signal = numeric_column(frame, "signal", input_path).astype(np.float32)
    filtered = predict_array(network, payload, signal)
    names = [f"{f:g}hz" for f in payload["stats"]["frequencies_hz"]]
    write_csv(output_path, {"signal": signal, **{name: filtered[:, k] for k, name in enumerate(names)}})
    rate = payload["stats"].get("sample_rate_hz")
    at = f" at {rate:g} Hz" if rate else ""
    return (f"wrote {output_path}: {len(signal)} samples{at}, the signal and {len(names)} filtered columns "
            f"({', '.join(names)}); nothing masked")


def describe_io(stats: FreqFilterStats, x: str, y: str) -> IODescription:
    """What the exported network reads and returns (`seqpipe export`), `x` and `y` its shapes."""
    freqs = [f"{f:g}hz" for f in stats["frequencies_hz"]]
    return IODescription(
        ["signal", *[f"select_{f}" for f in freqs]], freqs, stats.get("seq_len"), None,
        x=f"{x} = (batch, time steps, 1 + frequencies): the raw signal sampled at "
          f"{stats.get('sample_rate_hz')} Hz, then a one-hot choice of the frequency to extract",
        y=f"{y} = (batch, time steps, 1): the chosen frequency's component of the signal",
        units={"signal": "signal amplitude (unitless)", **{f: "signal amplitude (unitless)" for f in freqs}})
