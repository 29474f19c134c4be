"""ice_type: sea-ice type of a raster patch (open water / thin ice / thick ice); ResNet-style CNN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seqpipe.models.resnet import DEPTHS, ResNetParams
from seqpipe.pipelines.ice_type.evaluate import IceTypeEvaluateParams, evaluate
from seqpipe.pipelines.ice_type.predict import predict
from seqpipe.pipelines.ice_type.preprocess import IceTypePreprocessParams, preprocess
from seqpipe.registry import ModelSpec
from seqpipe.sources.http import HttpParams, download_http
from seqpipe.sources.ice_type import (LABELS_FILE, PATCH_DIR, IceTypeLocalParams, IceTypeSyntheticParams, copy_local,
                                      read_labels, write_synthetic)


@dataclass(frozen=True)
class IceTypeDownloadParams:
    source: Literal["synthetic", "local", "http"]
    synthetic: IceTypeSyntheticParams
    local: IceTypeLocalParams
    http: HttpParams    # labels.csv and patches/<file>.tif from URLs


def network(p: ResNetParams, stats: dict) -> tuple[str, dict]:
    return "ResNetClassifier", {"in_channels": stats["bands"], "num_classes": len(stats["classes"]),
                                "blocks_per_stage": DEPTHS[p.depth], "base_width": p.base_width,
                                "dropout": p.dropout}


SPEC = ModelSpec(
    name="ice_type",
    summary="sea-ice type of a GeoTIFF patch (open water / thin / thick); ResNet-style CNN, class weights",
    task="classification",
    network_module="resnet",
    download_params=IceTypeDownloadParams,
    preprocess_params=IceTypePreprocessParams,
    model_params=ResNetParams,
    evaluate_params=IceTypeEvaluateParams,
    sources={"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
             "local": lambda p, seed, out: copy_local(p.local, out),
             "http": lambda p, seed, out: download_http(p.http, out,
                                                        lambda d: read_labels(d / LABELS_FILE, d / PATCH_DIR))},
    preprocess=preprocess,
    network=network,
    evaluate=evaluate,
    predict=predict,
)
