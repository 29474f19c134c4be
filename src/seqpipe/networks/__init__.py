"""Networks: pure torch modules, one file each. A checkpoint names its network's module and class,
so evaluation and predict import only that file (and DVC reruns only the models that use it)."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn


class Samples(Protocol):
    """A split's samples as the fit loop and predict_batches read them: a tensor, or windows cut from the
    stored data on demand (seqpipe.stages.splits.TensorWindows); `x[index]` is a tensor either way."""

    @property
    def shape(self) -> torch.Size: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> torch.Tensor: ...

    def to(self, device: torch.device) -> Samples: ...


def build_network(module: str, class_name: str, args: dict) -> nn.Module:
    """Rebuild `seqpipe.networks.<module>.<class_name>(**args)`, as a checkpoint describes it."""
    try:
        cls = getattr(importlib.import_module(f"{__name__}.{module}"), class_name)
    except (ModuleNotFoundError, AttributeError):
        raise KeyError(f"unknown network {module}.{class_name}") from None
    return cls(**args)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_parameter_count(module: str, class_name: str, args: dict) -> int:
    """Parameters of the network `build_network` would build, counted on torch's meta device: shapes
    only, nothing is allocated."""
    with torch.device("meta"):
        return count_parameters(build_network(module, class_name, args))


def activation_bytes(module: str, class_name: str, args: dict, x: Samples, batch_size: int) -> int:
    """About the bytes that one training batch of `batch_size` samples like `x`'s saves for backward,
    measured on a throwaway CPU copy of the network: a real forward pass of 4 and of 8 samples,
    extrapolated linearly (activations grow with the batch; kernel workspaces in steps, which this
    overstates by up to ~15%). Saved parameters
    (and views of them) are not counted; 0 when the forward fails (training reports that error itself).
    The caller's random state is kept."""
    sizes = (batch_size,) if batch_size <= 8 else (4, 8)
    saved = []
    with torch.random.fork_rng(devices=[]):
        model = build_network(module, class_name, args).train()
        weights = {id(p) for p in model.parameters()}
        for size in sizes:
            total = 0

            def pack(tensor: torch.Tensor) -> torch.Tensor:
                nonlocal total
                if id(tensor) not in weights and id(tensor._base) not in weights:
                    total += tensor.numel() * tensor.element_size()
                return tensor

            try:
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                    model(x[:size].cpu())
            except (NotImplementedError, RuntimeError):
                return 0
            saved.append(total)
    if len(saved) == 1:
        return saved[0]
    return max(int(saved[0] + (saved[1] - saved[0]) / 4 * (batch_size - 4)), 0)


@torch.inference_mode()
def predict_batches(model: nn.Module, x: Samples, batch_size: int) -> np.ndarray:
    """`model(x)` in eval mode, `batch_size` samples at a time, as a float32 numpy array."""
    model.eval()
    outputs = [model(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outputs).numpy()
