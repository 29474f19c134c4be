"""ice_forecast: the next 7 days of sea-ice concentration maps from 20 days of history (ConvLSTM)."""

from __future__ import annotations

from seqpipe.errors import SeqpipeError
from seqpipe.params import ConvLSTMParams
from seqpipe.spec import ModelSpec


def network(p: ConvLSTMParams, stats: dict) -> tuple[str, dict]:
    height, width = stats["map_shape"]
    if height % p.patch or width % p.patch:
        raise SeqpipeError(f"models.ice_forecast.model.patch: {p.patch} does not divide the preprocessed "
                           f"map size {height}x{width}")
    return "ConvLSTMForecaster", {"hidden_channels": p.hidden_channels, "kernel_size": p.kernel_size,
                                  "patch": p.patch, "horizon": stats["horizon_days"]}


SPEC = ModelSpec(
    package=__name__,
    summary=("next 7 days of sea-ice concentration (G02135 GeoTIFFs) from 20 days; ConvLSTM "
             "encoder-forecaster"),
    task="masked_regression",
    network_module="convlstm",
    model_params=ConvLSTMParams,
    network=network,
    predict_help=("a folder of daily NSIDC G02135 concentration GeoTIFFs (N_YYYYMMDD_concentration_vX.Y.tif, "
                  "uint16 x10 with the G02135 flags) on one grid; the last preprocess.history_days "
                  "calendar days are read (20 by default), at least half of them present and at most "
                  "preprocess.max_gap_days in a row missing (5 by default; missing days and pixels are "
                  "filled in time). Writes one uint16 band per lead day (preprocess.horizon_days, 7 by "
                  "default) in the same coding on the input's grid; land, coast and the pole "
                  "hole are masked."),
    predict_example="seqpipe predict ice_forecast --input data/raw/ice_forecast --output ice_forecast.tif",
)
