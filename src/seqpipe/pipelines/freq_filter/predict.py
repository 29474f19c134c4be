"""`seqpipe predict freq_filter`: filter a signal CSV into one column per frequency."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqpipe.errors import SeqpipeError
from seqpipe.data.tables import read_csv_with_columns
from seqpipe.plotting import write_csv
from seqpipe.params import Params
from seqpipe.stages.predict import require_input
from seqpipe.pipelines.freq_filter.preprocess import make_inputs


def predict(network: nn.Module, payload: dict, args: Namespace, params: Params) -> Path:
    """Input: a CSV with a `signal` column sampled at the training rate. Output: `<f>hz` columns."""
    input_path, output_path = require_input(args), args.output
    frame = read_csv_with_columns(input_path, ["signal"])
    signal = pd.to_numeric(frame["signal"], errors="coerce").to_numpy(np.float32)
    if not np.isfinite(signal).all():
        raise SeqpipeError(f"{input_path}: column 'signal' has NaN, inf or non-numeric values")
    freqs = payload["stats"]["frequencies_hz"]
    n = len(freqs)
    x = make_inputs(np.repeat(signal[None, :], n, axis=0), np.arange(n), n)
    with torch.inference_mode():
        filtered = network(torch.from_numpy(np.ascontiguousarray(x)))[..., 0].numpy()
    write_csv(output_path, {"signal": signal, **{f"{f:g}hz": filtered[k] for k, f in enumerate(freqs)}})
    return output_path
