"""ice_type: sea-ice type of a raster patch (open water / thin ice / thick ice); ResNet-style CNN."""

from __future__ import annotations

from seqpipe.params import DEPTHS, ResNetParams
from seqpipe.spec import ModelSpec


def network(p: ResNetParams, stats: dict) -> tuple[str, dict]:
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
    predict_help=("one GeoTIFF patch or a folder of them (searched recursively for .tif/.tiff), "
                  "each with the trained bands and square size (3 uint8 bands of 32x32 pixels with the "
                  "default params.yaml; the model file holds the numbers). Writes a CSV: file, predicted "
                  "class (open_water, thin_ice, thick_ice) and one p_<class> probability column per class."),
    predict_example="seqpipe predict ice_type --input data/raw/ice_type/patches --output ice_types.csv",
)
