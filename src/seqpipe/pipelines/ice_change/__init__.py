"""ice_change: binary change map between two co-registered sea-ice rasters (Siamese FC-Siam-diff)."""

from __future__ import annotations

from seqpipe.params import SiameseParams
from seqpipe.spec import ModelSpec


def network(p: SiameseParams, stats: dict) -> tuple[str, dict]:
    return "SiameseChangeNet", {"in_channels": 1, "base_channels": p.base_channels, "depth": p.depth}


SPEC = ModelSpec(
    package=__name__,
    summary="ice-edge change map between two G02135 rasters; Siamese shared encoder, feature difference",
    task="binary_segmentation",
    network_module="siamese",
    model_params=SiameseParams,
    network=network,
    predict_inputs=("before", "after"),
)
