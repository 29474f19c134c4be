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


def training_footprint(module: str, class_name: str, args: dict, x: torch.Tensor,
                       batch_size: int) -> tuple[int, int]:
    """(parameters, bytes that one training batch of `batch_size` samples shaped like `x`'s saves for
    backward) of the network `build_network` would build, measured on torch's meta device: shapes
    only, nothing is allocated. Saved parameters (and views of them) are not counted twice; the
    activations count 0 when an op has no meta kernel."""
    with torch.device("meta"):
        model = build_network(module, class_name, args)
    weights = {id(p) for p in model.parameters()}
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if id(tensor) not in weights and id(tensor._base) not in weights:
            saved += tensor.numel() * tensor.element_size()
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model.train()(torch.empty(batch_size, *x.shape[1:], dtype=x.dtype, device="meta"))
    except (NotImplementedError, RuntimeError):
        saved = 0
    return count_parameters(model), saved


@torch.inference_mode()
def predict_batches(model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """`model(x)` in eval mode, `batch_size` samples at a time, as a float32 numpy array."""
    model.eval()
    outputs = [model(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outputs).numpy()
