"""ice_forecast: the next 7 days of sea-ice concentration maps from 20 days of history (ConvLSTM)."""

from __future__ import annotations

from typing import Annotated

from seqpipe.errors import SeqpipeError
from seqpipe.params import Range, check, params_section
from seqpipe.spec import ModelSpec, Stats


class IceForecastStats(Stats):
    """ice_forecast's stats.json (its preprocess's record)."""

    history_days: int
    horizon_days: int
    downsample: int
    max_gap_days: int
    map_shape: list[int]
    native_shape: list[int]
    crs: str
    transform: list[float]
    cell_area_km2: float
    days: int
    files: int
    missing_days: int
    first_day: str
    ocean_fraction: float
    split_dates: dict[str, list[str]]


@params_section
class ConvLSTMParams:
    """ice_forecast's `model:` section: a ConvLSTM encoder-forecaster."""

    hidden_channels: Annotated[int, Range(1, 1024)]
    kernel_size: Annotated[int, Range(1, 15)]     # odd
    # stride of the input embedding: the recurrent grid is `patch` x coarser
    patch: Annotated[int, Range(1, 64)]

    def __post_init__(self) -> None:
        check(self.kernel_size % 2 == 1, "kernel_size", f"must be odd, got {self.kernel_size}")


def network(p: ConvLSTMParams, stats: IceForecastStats) -> tuple[str, dict]:
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
    stats_record=IceForecastStats,
    # integrated ice-edge error (km², Goessling et al. 2016), the ice-edge's accuracy, structural similarity
    metric_directions={"iiee": -1, "edge_accuracy": 1, "ssim": 1},
    predict_help=("a folder of daily NSIDC G02135 concentration GeoTIFFs (N_YYYYMMDD_concentration_vX.Y.tif, "
                  "uint16 x10 with the G02135 flags) on one grid; the last preprocess.history_days "
                  "calendar days are read (20 by default), at least half of them present and at most "
                  "preprocess.max_gap_days in a row missing (5 by default; missing days and pixels are "
                  "filled in time). Writes one uint16 band per lead day (preprocess.horizon_days, 7 by "
                  "default) in the same coding on the input's grid; land, coast and the pole "
                  "hole are masked."),
    predict_example="seqpipe predict ice_forecast --input data/raw/ice_forecast --output ice_forecast.tif",
)
