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


TASKS: dict[str, Callable[[dict[str, Any]], Task]] = {
    "regression": lambda stats: Regression(),
}


def build_task(name: str, stats: dict[str, Any]) -> Task:
    return TASKS[name](stats)


def step(model: nn.Module, task: Task, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (loss, output)."""
    output = model(batch["x"])
    return task.loss(output, batch), output
