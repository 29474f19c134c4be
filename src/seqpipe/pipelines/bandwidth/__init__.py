"""bandwidth: next-step network metrics (throughput, rtt, loss, jitter) from a 20-step window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seqpipe.models.lstm import LSTMParams
from seqpipe.pipelines.bandwidth.evaluate import BandwidthEvaluateParams, evaluate
from seqpipe.pipelines.bandwidth.predict import predict
from seqpipe.pipelines.bandwidth.preprocess import BandwidthPreprocessParams, preprocess
from seqpipe.registry import ModelSpec
from seqpipe.sources.bandwidth import FILE_NAME, BandwidthSyntheticParams, write_synthetic
from seqpipe.sources.http import HttpParams, download_http, require
from seqpipe.sources.local import LocalParams, copy_local


@dataclass(frozen=True)
class BandwidthDownloadParams:
    source: Literal["synthetic", "local", "http"]
    synthetic: BandwidthSyntheticParams
    local: LocalParams  # a CSV; its columns are named in the preprocess section
    http: HttpParams    # that CSV from a URL, landing at bandwidth.csv


def network(p: LSTMParams, stats: dict) -> tuple[str, dict]:
    return "LSTMRegressor", {"input_size": len(stats["feature_columns"]), "hidden_size": p.hidden_size,
                             "num_layers": p.num_layers, "dropout": p.dropout, "bidirectional": p.bidirectional,
                             "output_size": len(stats["target_columns"])}


SPEC = ModelSpec(
    name="bandwidth",
    summary="next-step throughput, rtt, packet loss and jitter from a window of metrics; LSTM",
    task="regression",
    network_module="lstm",
    download_params=BandwidthDownloadParams,
    preprocess_params=BandwidthPreprocessParams,
    model_params=LSTMParams,
    evaluate_params=BandwidthEvaluateParams,
    sources={"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
             "local": lambda p, seed, out: copy_local(p.local, FILE_NAME, out),
             "http": lambda p, seed, out: download_http(p.http, out, require(FILE_NAME))},
    preprocess=preprocess,
    network=network,
    evaluate=evaluate,
    predict=predict,
)
