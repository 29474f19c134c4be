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
    """A loss over a batch dict. A task may also define `augment(batch) -> batch`, which the
    trainer applies to training batches only (drawing from torch's global RNG, which checkpoints save)."""

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
    """Class-weighted cross-entropy between logits `model(batch['x'])` and integer labels `batch['y']`.

    `augment` (training batches only) flips, rotates by multiples of 90 degrees and rescales the
    brightness of each (batch, bands, h, w) patch by f in [1 - brightness, 1 + brightness]; inputs
    are per-band standardised, so f acts on the physical values: x' = f * x + (f - 1) * mean / std.
    The factory takes only the stats, so `brightness` is a fixed default, not a params key.
    """

    def __init__(self, class_weights: list[float], band_mean: list[float], band_std: list[float],
                 brightness: float = 0.15) -> None:
        self.weight = torch.tensor(class_weights, dtype=torch.float32)
        self.offset = (torch.tensor(band_mean) / torch.tensor(band_std)).float()[None, :, None, None]
        self.brightness = brightness

    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(output.float(), batch["y"], weight=self.weight.to(output.device))

    def augment(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        n = len(x)

        def draw(shape: tuple[int, ...]) -> torch.Tensor:  # torch's global RNG, moved to x's device
            return torch.rand(shape).to(x.device)

        # with rot90: all 8 symmetries
        x = torch.where((draw((n,)) < 0.5)[:, None, None, None], x.flip(-1), x)
        turns = (draw((n,)) * 4).long().clamp_(max=3)
        rotated = x.clone()
        for k in (1, 2, 3):
            chosen = turns == k
            if chosen.any():
                rotated[chosen] = torch.rot90(x[chosen], k, (-2, -1))
        x = rotated
        factor = 1 + (2 * draw((n,)) - 1)[:, None, None, None] * self.brightness
        x = factor * x + (factor - 1) * self.offset.to(x.device)
        return {**batch, "x": x}


TASKS: dict[str, Callable[[dict[str, Any]], Task]] = {
    "regression": lambda stats: Regression(),
    "masked_regression": lambda stats: MaskedRegression(),
    "binary_segmentation": lambda stats: BinarySegmentation(stats.get("pos_weight", 1.0)),
    "classification": lambda stats: Classification(stats["class_weights"], stats["band_mean"],
                                                   stats["band_std"]),
}


def build_task(name: str, stats: dict[str, Any]) -> Task:
    return TASKS[name](stats)


def step(model: nn.Module, task: Task, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (loss, output)."""
    output = model(batch["x"])
    return task.loss(output, batch), output
