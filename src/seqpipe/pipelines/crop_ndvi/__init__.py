"""crop_ndvi: next NDVI per pixel from Sentinel-2 red/NIR/SCL GeoTIFF stacks; BiLSTM 2x128 -> FC 256->64
-> 1."""

from __future__ import annotations

from typing import Annotated

from seqpipe.params import ForecastLSTMParams, Length, Width, params_section
from seqpipe.spec import ModelSpec


@params_section
class CropModelParams(ForecastLSTMParams):
    # hidden widths of the FC head after the (Bi)LSTM: [64] = 256 -> 64 -> 1
    head_hidden: Annotated[list[Width], Length(0, 8)]


def network(p: CropModelParams, stats: dict) -> tuple[str, dict]:
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
