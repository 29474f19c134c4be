"""Networks, one file each. NETWORKS maps the class name stored in a checkpoint to the class."""

from __future__ import annotations

from torch import nn

from seqpipe.models.convlstm import ConvLSTMForecaster
from seqpipe.models.lstm import LSTMRegressor
from seqpipe.models.resnet import ResNetClassifier
from seqpipe.models.siamese import SiameseChangeNet

NETWORKS: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in (LSTMRegressor, ResNetClassifier,
                                                                      ConvLSTMForecaster, SiameseChangeNet)}


def build_network(class_name: str, args: dict) -> nn.Module:
    """Rebuild a network from the (class name, constructor args) a checkpoint carries."""
    if class_name not in NETWORKS:
        raise KeyError(f"unknown network class {class_name!r} (known: {', '.join(NETWORKS)})")
    return NETWORKS[class_name](**args)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
