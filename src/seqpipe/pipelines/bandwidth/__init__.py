"""bandwidth: next-step network metrics (throughput, rtt, loss, jitter) from a 20-step window."""

from __future__ import annotations

from seqpipe.params import LSTMParams
from seqpipe.spec import ModelSpec

FILE_NAME = "bandwidth.csv"   # the raw CSV, whatever the source


def network(p: LSTMParams, stats: dict) -> tuple[str, dict]:
    return "LSTMRegressor", {"input_size": len(stats["feature_columns"]), "hidden_size": p.hidden_size,
                             "num_layers": p.num_layers, "dropout": p.dropout, "bidirectional": p.bidirectional,
                             "output_size": len(stats["target_columns"])}


SPEC = ModelSpec(
    package=__name__,
    summary="next-step throughput, rtt, packet loss and jitter from a window of metrics; LSTM",
    task="regression",
    network_module="lstm",
    model_params=LSTMParams,
    network=network,
)
