"""ice_change: binary change map between two co-registered sea-ice rasters (Siamese FC-Siam-diff)."""

from __future__ import annotations

from typing import Annotated

from seqpipe.params import Range, params_section
from seqpipe.spec import ModelSpec, Stats


class IceChangeStats(Stats):
    """ice_change's stats.json (its preprocess's record)."""

    pairs: int
    pairs_per_split: dict[str, int]
    dropped_across_splits: int
    map_shape: list[int]
    crs: str
    change_fraction_train: float
    pos_weight: float


@params_section
class SiameseParams:
    """ice_change's `model:` section: a Siamese encoder-decoder on the feature difference."""

    base_channels: Annotated[int, Range(1, 1024)]   # width of the first encoder level; doubles at each level
    # encoder levels (each after the first halves the resolution)
    depth: Annotated[int, Range(1, 5)]


def network(p: SiameseParams, stats: IceChangeStats) -> tuple[str, dict]:
    return "SiameseChangeNet", {"in_channels": 1, "base_channels": p.base_channels, "depth": p.depth}


SPEC = ModelSpec(
    package=__name__,
    summary="ice-edge change map between two G02135 rasters; Siamese shared encoder, feature difference",
    task="binary_segmentation",
    network_module="siamese",
    model_params=SiameseParams,
    network=network,
    stats_record=IceChangeStats,
    predict_inputs=("before", "after"),
    predict_help=("--before and --after: two NSIDC G02135 concentration GeoTIFFs (uint16 x10 with the G02135 "
                  "flags) on the same grid, the earlier date first (with G02135 names, --after's "
                  "date must be later). Writes a uint8 GeoTIFF on that grid: 1 changed, 0 unchanged (change "
                  "probability against params.yaml's evaluate.threshold, 0.5 by default), 255 (nodata) where "
                  "either date has no value (land, coast, pole hole, missing)."),
    predict_example=("seqpipe predict ice_change --before "
                     "data/raw/ice_change/pair_0000/N_20190104_concentration_v3.0.tif --after "
                     "data/raw/ice_change/pair_0000/N_20190124_concentration_v3.0.tif --output change.tif"),
)
