"""Tasks turn a batch into a loss: the trainer knows nothing about any model beyond this.

TASKS maps a task name (a ModelSpec's `task`) to a factory that takes the preprocessing
stats (e.g. class weights computed on the train split) and returns the task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F


class Task(Protocol):
    """A loss over a batch dict. (A model's augmentation of its training batches is the model's own: its
    folder's `train.augmentation`, seqpipe.stages.train.)"""

    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


class Regression:
    """Mean squared error between `model(batch['x'])` and `batch['y']`."""

    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(output.float(), batch["y"].float())


class MaskedRegression:
    """Mean squared error over the elements where `batch['mask']` is true (e.g. ocean pixels)."""

    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["mask"].to(output.dtype)
        return ((output.float() - batch["y"].float()) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)


class BinarySegmentation:
    """Per-pixel BCE with logits over `batch['mask']` pixels; `pos_weight` up-weights the positives."""

    def __init__(self, pos_weight: float = 1.0) -> None:
        self.pos_weight = pos_weight

    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["mask"].float()
        weight = torch.tensor(self.pos_weight, device=output.device)
        per_pixel = F.binary_cross_entropy_with_logits(output.float(), batch["y"].float(),
                                                       pos_weight=weight, reduction="none")
        return (per_pixel * mask).sum() / mask.sum().clamp(min=1.0)


class Classification:
    """Class-weighted cross-entropy between logits `model(batch['x'])` and integer labels `batch['y']`."""

    def __init__(self, class_weights: list[float]) -> None:
        self.weight = torch.tensor(class_weights, dtype=torch.float32)

    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(output.float(), batch["y"], weight=self.weight.to(output.device))


TASKS: dict[str, Callable[[dict[str, Any]], Task]] = {
    "regression": lambda stats: Regression(),
    "masked_regression": lambda stats: MaskedRegression(),
    "binary_segmentation": lambda stats: BinarySegmentation(stats.get("pos_weight", 1.0)),
    "classification": lambda stats: Classification(stats["class_weights"]),
}


def build_task(name: str, stats: dict[str, Any]) -> Task:
    return TASKS[name](stats)


def step(model: nn.Module, task: Task, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (loss, output)."""
    output = model(batch["x"])
    return task.loss(output, batch), output
