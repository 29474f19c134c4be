"""Tasks turn a batch into a loss: the trainer knows nothing about any model beyond this."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F


class Task(Protocol):
    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


class Regression:
    """Mean squared error between `model(batch['x'])` and `batch['y']`."""

    def loss(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(output.float(), batch["y"].float())


TASKS: dict[str, Task] = {"regression": Regression()}


def step(model: nn.Module, task: Task, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (loss, output)."""
    output = model(batch["x"])
    return task.loss(output, batch), output
