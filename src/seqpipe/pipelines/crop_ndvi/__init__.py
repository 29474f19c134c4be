"""crop_ndvi: next NDVI per pixel from Sentinel-2 red/NIR/SCL GeoTIFF stacks; BiLSTM 2x128 -> FC 256->64 -> 1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seqpipe.models.lstm import LSTMParams
from seqpipe.params import check
from seqpipe.pipelines.crop_ndvi.evaluate import CropEvaluateParams, evaluate
from seqpipe.pipelines.crop_ndvi.predict import predict
from seqpipe.pipelines.crop_ndvi.preprocess import CropPreprocessParams, preprocess
from seqpipe.registry import ModelSpec
from seqpipe.sources.crop_ndvi import (CropLocalParams, CropSyntheticParams, copy_local_stack, index_stack,
                                       write_synthetic)
from seqpipe.sources.http import HttpParams, download_http
from seqpipe.sources.stac import StacParams, download_stac


@dataclass(frozen=True)
class CropDownloadParams:
    source: Literal["synthetic", "local", "http", "stac"]
    synthetic: CropSyntheticParams
    local: CropLocalParams   # a folder of GeoTIFFs; its layout (file pattern, bands, date) is named here
    http: HttpParams         # GeoTIFFs from URLs, indexed with the layout keys of `local`
    stac: StacParams         # Sentinel-2 L2A from a STAC API (Earth Search by default), windowed to a bbox


@dataclass(frozen=True)
class CropModelParams(LSTMParams):
    head_hidden: list[int]   # hidden widths of the FC head after the (Bi)LSTM: [64] = 256 -> 64 -> 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(all(h >= 1 for h in self.head_hidden), "head_hidden", "widths must be >= 1")


def network(p: CropModelParams, stats: dict) -> tuple[str, dict]:
    return "LSTMRegressor", {"input_size": len(stats["feature_columns"]), "hidden_size": p.hidden_size,
                             "num_layers": p.num_layers, "dropout": p.dropout, "bidirectional": p.bidirectional,
                             "output_size": 1, "head_hidden": list(p.head_hidden)}


SPEC = ModelSpec(
    name="crop_ndvi",
    summary="next NDVI per pixel from a window of cloud-masked Sentinel-2 red/NIR GeoTIFFs; (Bi)LSTM + FC head",
    task="regression",
    network_module="lstm",
    download_params=CropDownloadParams,
    preprocess_params=CropPreprocessParams,
    model_params=CropModelParams,
    evaluate_params=CropEvaluateParams,
    sources={"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
             "local": lambda p, seed, out: copy_local_stack(p.local, out),
             "http": lambda p, seed, out: download_http(p.http, out, lambda d: index_stack(d, p.local)),
             "stac": lambda p, seed, out: download_stac(p.stac, out)},
    preprocess=preprocess,
    network=network,
    evaluate=evaluate,
    predict=predict,
)
