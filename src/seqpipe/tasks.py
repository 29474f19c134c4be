"""Tasks turn a batch into a loss: the trainer knows nothing about any model beyond this.

TASKS maps a task name (a registry entry's `task`) to a factory that takes the preprocessing
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

        x = torch.where((draw((n,)) < 0.5)[:, None, None, None], x.flip(-1), x)  # with rot90: all 8 symmetries
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
    "classification": lambda stats: Classification(stats["class_weights"], stats["band_mean"], stats["band_std"]),
}


def build_task(name: str, stats: dict[str, Any]) -> Task:
    return TASKS[name](stats)


def step(model: nn.Module, task: Task, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (loss, output)."""
    output = model(batch["x"])
    return task.loss(output, batch), output
