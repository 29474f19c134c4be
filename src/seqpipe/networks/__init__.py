"""Networks: pure torch modules, one file each. A checkpoint names its network's module and class,
so evaluation and predict import only that file (and DVC reruns only the models that use it)."""

from __future__ import annotations

import importlib

import numpy as np
import torch
from torch import nn


def build_network(module: str, class_name: str, args: dict) -> nn.Module:
    """Rebuild `seqpipe.networks.<module>.<class_name>(**args)`, as a checkpoint describes it."""
    try:
        cls = getattr(importlib.import_module(f"{__name__}.{module}"), class_name)
    except (ModuleNotFoundError, AttributeError):
        raise KeyError(f"unknown network {module}.{class_name}") from None
    return cls(**args)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def predict_batches(model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """`model(x)` in eval mode, `batch_size` samples at a time, as a float32 numpy array."""
    model.eval()
    outputs = [model(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outputs).numpy()
