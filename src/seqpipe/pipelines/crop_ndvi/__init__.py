"""crop_ndvi: next NDVI per pixel from Sentinel-2 red/NIR/SCL GeoTIFF stacks; BiLSTM 2x128 -> FC 256->64
-> 1."""

from __future__ import annotations

from typing import Annotated, Literal

from seqpipe.params import Dropout, Layers, Length, Width, check_lstm_size, params_section
from seqpipe.spec import ModelSpec, WindowStats


class CropStats(WindowStats):
    """crop_ndvi's stats.json (its preprocess's record)."""

    grid_days: int
    max_gap_steps: int
    mask_scl: list[int]
    dates: list[str]
    date_steps: list[int]
    grid_start: str
    n_steps: int
    masked_fraction: list[float]
    crs: str
    transform: list[float]
    shape: list[int]
    pixel_fraction: float
    ndvi_train_range: list[float]
    map_target_date: str
    map_last_date: str


@params_section
class CropModelParams:
    """crop_ndvi's `model:` section: a (Bi)LSTM over each pixel's window, then a dense head."""

    hidden_size: Width
    num_layers: Layers
    dropout: Dropout
    bidirectional: bool   # reads each window both ways
    # how the network reads each window (seqpipe.networks.lstm): global = as the training scaler left
    # it; difference = relative to its last step, forecasting the change; revin = per-window instance
    # normalisation, inverted on the output. The last two follow a level outside the training range.
    normalisation: Literal["global", "difference", "revin"]
    # hidden widths of the FC head after the (Bi)LSTM: [64] = 256 -> 64 -> 1
    head_hidden: Annotated[list[Width], Length(0, 8)]

    def __post_init__(self) -> None:
        check_lstm_size(self)


def network(p: CropModelParams, stats: CropStats) -> tuple[str, dict]:
    return "LSTMRegressor", {"input_size": len(stats["feature_columns"]), "hidden_size": p.hidden_size,
                             "num_layers": p.num_layers, "dropout": p.dropout,
                             "bidirectional": p.bidirectional,
                             "output_size": 1, "head_hidden": list(p.head_hidden),
                             "normalisation": p.normalisation, "target_index": [0]}


SPEC = ModelSpec(
    package=__name__,
    summary=("next NDVI per pixel from a window of cloud-masked Sentinel-2 red/NIR GeoTIFFs; "
             "(Bi)LSTM + FC head"),
    task="regression",
    network_module="lstm",
    model_params=CropModelParams,
    network=network,
    stats_record=CropStats,
    predict_help=("a folder of Sentinel-2 L2A GeoTIFFs, red (B04), NIR (B08) and SCL for each date "
                  "on one grid: the scenes.json a download wrote, or else file names matching params.yaml's "
                  "download.local.pattern (T..._YYYYMMDD_B04.tif by default). DN scale from the files' "
                  "BOA_ADD_OFFSET/PROCESSING_BASELINE tags (or download.local.boa_add_offset). Only the "
                  "dates within window + max_gap_steps grid steps of the last one are read (10 + 2 steps "
                  "of 5 days by default). Writes a float32 GeoTIFF on the input's grid: the NDVI one grid "
                  "step after the last date, -9999 (nodata) where a pixel has no complete window: the last "
                  "date masked (SCL cloud, shadow, nodata...) or a gap longer than max_gap_steps in the "
                  "window; the summary line counts both."),
    predict_example="seqpipe predict crop_ndvi --input data/raw/crop_ndvi --output next_ndvi.tif",
)
