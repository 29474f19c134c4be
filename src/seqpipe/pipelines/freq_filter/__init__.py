"""freq_filter: extract one sinusoid (selected by a one-hot input) from a noisy mix; LSTM seq2seq."""

from __future__ import annotations

from seqpipe.params import Dropout, Layers, Width, check_lstm_size, params_section
from seqpipe.spec import ModelSpec, Stats

RAW_FILES = ("signals.npy", "components.npy", "signal_meta.json")   # the raw folder, whatever the source


class FreqFilterStats(Stats):
    """freq_filter's stats.json (its preprocess's record)."""

    frequencies_hz: list[float]
    sample_rate_hz: float
    seq_len: int
    input_size: int
    series_per_split: dict[str, int]


@params_section
class LSTMParams:
    """freq_filter's `model:` section: a (Bi)LSTM read step by step, one output per step."""

    hidden_size: Width
    num_layers: Layers
    dropout: Dropout
    bidirectional: bool   # reads each window both ways; the task is offline (non-causal)

    def __post_init__(self) -> None:
        check_lstm_size(self)


def network(p: LSTMParams, stats: FreqFilterStats) -> tuple[str, dict]:
    return "LSTMRegressor", {"input_size": stats["input_size"], "hidden_size": p.hidden_size,
                             "num_layers": p.num_layers, "dropout": p.dropout,
                             "bidirectional": p.bidirectional, "output_size": 1, "seq2seq": True}


SPEC = ModelSpec(
    package=__name__,
    summary="extract one sinusoid (1/3/5/7 Hz) from a noisy mix; (Bi)LSTM seq2seq",
    task="regression",
    network_module="lstm",
    model_params=LSTMParams,
    network=network,
    stats_record=FreqFilterStats,
    predict_help=("a CSV with a `signal` column (other columns are ignored): one mixed signal sampled at the "
                  "training rate (download.synthetic.sample_rate_hz, 50 Hz by default; trained on 50-sample "
                  "series), numeric and finite. A `time_s` column (seconds) or `timestamp` column "
                  "(ISO 8601), if there is one, must step by one sample period without gaps (another rate or "
                  "a gap is refused, naming the row). Writes the signal and one filtered column per "
                  "trained frequency (1hz, 3hz, 5hz, 7hz by default). examples/freq_filter_signal.csv is "
                  "such a file (python examples/make_freq_filter_signal.py writes it)."),
    predict_example=("seqpipe predict freq_filter --input examples/freq_filter_signal.csv "
                     "--output filtered.csv"),
)
