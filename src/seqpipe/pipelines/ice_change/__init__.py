"""ice_change: binary change map between two co-registered sea-ice rasters (Siamese FC-Siam-diff)."""

from __future__ import annotations

from seqpipe.models.siamese import SiameseParams
from seqpipe.pipelines.ice_change.evaluate import IceChangeEvaluateParams, evaluate
from seqpipe.pipelines.ice_change.predict import predict
from seqpipe.pipelines.ice_change.preprocess import IceChangePreprocessParams, preprocess
from seqpipe.registry import ModelSpec
from seqpipe.sources.ice_change import SOURCES, IceChangeDownloadParams


def network(p: SiameseParams, stats: dict) -> tuple[str, dict]:
    return "SiameseChangeNet", {"in_channels": 1, "base_channels": p.base_channels, "depth": p.depth}


SPEC = ModelSpec(
    name="ice_change",
    summary="ice-edge change map between two G02135 rasters; Siamese shared encoder, feature difference",
    task="binary_segmentation",
    network_module="siamese",
    download_params=IceChangeDownloadParams,
    preprocess_params=IceChangePreprocessParams,
    model_params=SiameseParams,
    evaluate_params=IceChangeEvaluateParams,
    sources=SOURCES,
    preprocess=preprocess,
    network=network,
    evaluate=evaluate,
    predict=predict,
)
