"""bandwidth: next-step network metrics (throughput, rtt, loss, jitter) from a 20-step window."""

from __future__ import annotations

from seqpipe.params import ForecastLSTMParams
from seqpipe.spec import ModelSpec

FILE_NAME = "bandwidth.csv"   # the raw CSV, whatever the source


def network(p: ForecastLSTMParams, stats: dict) -> tuple[str, dict]:
    return "LSTMRegressor", {"input_size": len(stats["feature_columns"]), "hidden_size": p.hidden_size,
                             "num_layers": p.num_layers, "dropout": p.dropout, "bidirectional": p.bidirectional,
                             "output_size": len(stats["target_columns"]), "normalisation": p.normalisation,
                             "target_index": list(stats["target_index"])}


SPEC = ModelSpec(
    package=__name__,
    summary="next-step throughput, rtt, packet loss and jitter from a window of metrics; LSTM",
    task="regression",
    network_module="lstm",
    model_params=ForecastLSTMParams,
    network=network,
    predict_help=("a metrics CSV: a `timestamp` column (ISO 8601, strictly increasing, one row per minute as "
                  "trained) and the model's feature columns, numeric and finite (other columns are ignored). The "
                  "columns come from the model file; with the default params.yaml they are throughput_mbps, rtt_ms, "
                  "packet_loss, jitter_ms, time_of_day, day_of_week, congestion_window, queue_depth, retransmits. At "
                  "least preprocess.window rows (20 by default). Writes one row per full window: the timestamp of "
                  "the next step and the forecast of each target (throughput_mbps, rtt_ms, packet_loss, jitter_ms)."),
    predict_example="seqpipe predict bandwidth --input data/raw/bandwidth/bandwidth.csv --output forecast.csv",
)
