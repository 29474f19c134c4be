"""bandwidth: next-step network metrics (throughput, rtt, loss, jitter) from a window of past metrics; any
user series through the `local` source. A frozen ridge forecast plus a gated LSTM correction."""

from __future__ import annotations

from typing import Annotated, Any

from seqpipe.params import (
    Dropout,
    Layers,
    Length,
    Penalty,
    Range,
    Width,
    check,
    check_lstm_size,
    params_section,
)
from seqpipe.spec import ModelSpec, WindowStats

FILE_NAME = "bandwidth.csv"   # the raw CSV, whatever the source
# The unit of each column of the synthetic writer's CSV (download.COLUMNS): the one table that evaluate's
# plots and export's metadata read. A user's own column gets one from its name's suffix (SUFFIX_UNITS).
UNITS = {"throughput_mbps": "Mbit/s", "rtt_ms": "ms", "packet_loss": "%", "jitter_ms": "ms",
         "time_of_day": "hour (0-24)", "day_of_week": "0 = Monday .. 6 = Sunday",
         "congestion_window": "segments", "queue_depth": "packets", "retransmits": "packets per row"}
SUFFIX_UNITS = {"_mbps": "Mbit/s", "_ms": "ms", "_hz": "Hz", "_s": "s", "_pct": "%"}
OUTSIDE_TRAINING = ("the forecaster reads each window relative to its last step and clips that "
                    "step's level to the training range, so it follows the series, but it has never "
                    "seen such values")


class BandwidthStats(WindowStats):
    """bandwidth's stats.json (its preprocess's record)."""

    target_index: list[int]                 # each target's index among feature_columns
    timestamp_column: str
    cadence_s: float                        # seconds between rows (a business day: 86400)
    business_days: bool                     # Monday-Friday rows, weekends absent
    season_steps: int
    resolved: dict[str, Any]                # the `auto` keys as resolved from the data, and which were auto
    rows: int
    split_rows: dict[str, list[int]]        # split: [first row, end row) of the CSV


def unit(column: str) -> str | None:
    """The unit of `column`: UNITS, else its name's suffix (SUFFIX_UNITS), else None."""
    if column in UNITS:
        return UNITS[column]
    return next((u for suffix, u in SUFFIX_UNITS.items() if column.endswith(suffix)), None)


@params_section
class ForecasterParams:
    """The `model:` section: seqpipe.networks.forecaster.LinearResidualLSTM."""

    hidden_size: Width
    num_layers: Layers
    dropout: Dropout
    linear_alpha: Penalty   # ridge penalty of the linear part (standardised units)
    # nominal coverage of the split-conformal prediction intervals
    interval_levels: Annotated[list[Annotated[float, Range(0, 1, low_open=True, high_open=True)]],
                               Length(0, 8)]

    def __post_init__(self) -> None:
        check_lstm_size(self)
        check(len(set(self.interval_levels)) == len(self.interval_levels), "interval_levels",
              "has duplicates")


def network(p: ForecasterParams, stats: BandwidthStats) -> tuple[str, dict]:
    return "LinearResidualLSTM", {"input_size": len(stats["feature_columns"]), "window": stats["window"],
                                  "hidden_size": p.hidden_size, "num_layers": p.num_layers,
                                  "dropout": p.dropout, "target_index": list(stats["target_index"]),
                                  "linear_alpha": p.linear_alpha,
                                  "interval_levels": list(p.interval_levels)}


SPEC = ModelSpec(
    package=__name__,
    summary="next-step throughput, rtt, packet loss and jitter from a window of metrics; ridge + gated LSTM",
    task="regression",
    network_module="forecaster",
    model_params=ForecasterParams,
    network=network,
    stats_record=BandwidthStats,
    predict_help=("a metrics CSV: a `timestamp` column (ISO 8601, strictly increasing, at the "
                  "cadence the model was trained at, one row per minute by default, without gaps; a "
                  "business-day model takes Monday to Friday with up to 2 holidays in a row absent) and the "
                  "model's feature columns, numeric and finite (other columns are ignored). The columns come "
                  "from the model file; with the default params.yaml they are throughput_mbps, rtt_ms, "
                  "packet_loss, jitter_ms, time_of_day, day_of_week, congestion_window, queue_depth, "
                  "retransmits. At least preprocess.window rows (20 by default). Writes one row per full "
                  "window: the timestamp of the next step and the forecast of each target (throughput_mbps, "
                  "rtt_ms, packet_loss, jitter_ms), each followed by its split-conformal prediction interval "
                  "at model.interval_levels (<target>_lower_80, _upper_80, _lower_95, _upper_95 "
                  "by default)."),
    predict_example=("seqpipe predict bandwidth --input data/raw/bandwidth/bandwidth.csv "
                     "--output forecast.csv"),
)
