"""crop_ndvi: next NDVI per pixel from Sentinel-2 red/NIR/SCL GeoTIFF stacks; BiLSTM 2x128 -> FC 256->64 -> 1."""

from __future__ import annotations

from dataclasses import dataclass

from seqpipe.params import LSTMParams, check
from seqpipe.spec import ModelSpec


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
    package=__name__,
    summary="next NDVI per pixel from a window of cloud-masked Sentinel-2 red/NIR GeoTIFFs; (Bi)LSTM + FC head",
    task="regression",
    network_module="lstm",
    model_params=CropModelParams,
    network=network,
)
