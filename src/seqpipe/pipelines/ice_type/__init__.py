"""ice_type: sea-ice type of a raster patch (open water / thin ice / thick ice); ResNet-style CNN."""

from __future__ import annotations

from typing import Annotated, Literal

from seqpipe.params import Dropout, Range, params_section
from seqpipe.spec import ModelSpec, Stats

# depth -> BasicBlocks per stage (He et al. 2016, table 1); the widths double at each stage.
DEPTHS: dict[int, list[int]] = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


class IceTypeStats(Stats):
    """ice_type's stats.json (its preprocess's record)."""

    classes: list[str]
    bands: int
    patch_size: int
    crs: str
    band_mean: list[float]
    band_std: list[float]
    class_counts: dict[str, dict[str, int]]
    class_weights: list[float]


@params_section
class ResNetParams:
    """ice_type's `model:` section: a ResNet-style patch classifier."""

    depth: Literal[10, 18, 34]                  # BasicBlock layouts of ResNet-10/18/34 (DEPTHS)
    base_width: Annotated[int, Range(4, 512)]   # channels of the first stage (64 in the original ResNet)
    dropout: Dropout                            # before the linear head


def network(p: ResNetParams, stats: IceTypeStats) -> tuple[str, dict]:
    return "ResNetClassifier", {"in_channels": stats["bands"], "num_classes": len(stats["classes"]),
                                "blocks_per_stage": DEPTHS[p.depth], "base_width": p.base_width,
                                "dropout": p.dropout}


SPEC = ModelSpec(
    package=__name__,
    summary="sea-ice type of a GeoTIFF patch (open water / thin / thick); ResNet-style CNN, class weights",
    task="classification",
    network_module="resnet",
    model_params=ResNetParams,
    network=network,
    stats_record=IceTypeStats,
    predict_help=("one GeoTIFF patch or a folder of them (searched recursively for .tif/.tiff), "
                  "each with the trained bands and square size (3 uint8 bands of 32x32 pixels with the "
                  "default params.yaml; the model file holds the numbers). Writes a CSV: file, predicted "
                  "class (open_water, thin_ice, thick_ice) and one p_<class> probability column per class."),
    predict_example="seqpipe predict ice_type --input data/raw/ice_type/patches --output ice_types.csv",
)
