"""ice_forecast: the next 7 days of sea-ice concentration maps from 30 days of history (ConvLSTM)."""

from __future__ import annotations

from seqpipe import SeqpipeError
from seqpipe.models.convlstm import ConvLSTMParams
from seqpipe.pipelines.ice_forecast.evaluate import IceForecastEvaluateParams, evaluate
from seqpipe.pipelines.ice_forecast.predict import predict
from seqpipe.pipelines.ice_forecast.preprocess import IceForecastPreprocessParams, preprocess
from seqpipe.registry import ModelSpec
from seqpipe.sources.ice_forecast import SOURCES, IceForecastDownloadParams


def network(p: ConvLSTMParams, stats: dict) -> tuple[str, dict]:
    height, width = stats["map_shape"]
    if height % p.patch or width % p.patch:
        raise SeqpipeError(f"models.ice_forecast.model.patch: {p.patch} does not divide the preprocessed "
                           f"map size {height}x{width}")
    return "ConvLSTMForecaster", {"hidden_channels": p.hidden_channels, "kernel_size": p.kernel_size,
                                  "patch": p.patch, "horizon": stats["horizon_days"]}


SPEC = ModelSpec(
    name="ice_forecast",
    summary="next 7 days of sea-ice concentration (G02135 GeoTIFFs) from 30 days; ConvLSTM encoder-forecaster",
    task="masked_regression",
    network_module="convlstm",
    download_params=IceForecastDownloadParams,
    preprocess_params=IceForecastPreprocessParams,
    model_params=ConvLSTMParams,
    evaluate_params=IceForecastEvaluateParams,
    sources=SOURCES,
    preprocess=preprocess,
    network=network,
    evaluate=evaluate,
    predict=predict,
)
