"""freq_filter: extract one sinusoid (selected by a one-hot input) from a noisy mix; LSTM seq2seq."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seqpipe.models.lstm import LSTMParams
from seqpipe.pipelines.freq_filter.evaluate import FreqEvaluateParams, evaluate
from seqpipe.pipelines.freq_filter.predict import predict
from seqpipe.pipelines.freq_filter.preprocess import FreqPreprocessParams, preprocess
from seqpipe.registry import ModelSpec
from seqpipe.sources.freq_filter import FreqSyntheticParams, write_synthetic
from seqpipe.sources.http import HttpParams, download_http, require
from seqpipe.sources.local import LocalParams, copy_local


@dataclass(frozen=True)
class FreqDownloadParams:
    source: Literal["synthetic", "local", "http"]
    synthetic: FreqSyntheticParams
    local: LocalParams  # a folder holding signals.npy, components.npy, signal_meta.json
    http: HttpParams    # the same three files from URLs


def network(p: LSTMParams, stats: dict) -> tuple[str, dict]:
    return "LSTMRegressor", {"input_size": stats["input_size"], "hidden_size": p.hidden_size,
                             "num_layers": p.num_layers, "dropout": p.dropout, "bidirectional": p.bidirectional, "output_size": 1,
                             "seq2seq": True}


SPEC = ModelSpec(
    name="freq_filter",
    summary="extract one sinusoid (1/3/5/7 Hz) from a noisy mix; (Bi)LSTM seq2seq",
    task="regression",
    network_module="lstm",
    download_params=FreqDownloadParams,
    preprocess_params=FreqPreprocessParams,
    model_params=LSTMParams,
    evaluate_params=FreqEvaluateParams,
    sources={"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
             "local": lambda p, seed, out: copy_local(p.local, None, out),
             "http": lambda p, seed, out: download_http(
                 p.http, out, require("signals.npy", "components.npy", "signal_meta.json"))},
    preprocess=preprocess,
    network=network,
    evaluate=evaluate,
    predict=predict,
)
