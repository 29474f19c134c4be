"""ConvLSTM encoder-forecaster (Shi et al. 2015): 2D maps in, the next `horizon` maps out.

The encoder reads the history one day at a time on a patch-embedded grid (a strided conv, so the
recurrent state is `patch` times coarser than the maps); the forecaster starts from the encoder's
state and is fed its own previous forecast. Each step predicts a change from the previous map
(residual): the recurrent state is decoded to full resolution with a pixel shuffle and refined
together with full-resolution features of the previous map, so edges are placed to the pixel.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell: the four gates from a single conv over [input, hidden]."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMForecaster(nn.Module):
    """(batch, history, H, W) maps -> (batch, horizon, H, W); H and W must be multiples of `patch`."""

    def __init__(self, hidden_channels: int, kernel_size: int, patch: int, horizon: int) -> None:
        super().__init__()
        self.patch, self.horizon = patch, horizon
        self.embed = nn.Conv2d(1, hidden_channels, patch, stride=patch)
        self.encoder = ConvLSTMCell(hidden_channels, hidden_channels, kernel_size)
        self.forecaster = ConvLSTMCell(hidden_channels, hidden_channels, kernel_size)
        local = max(hidden_channels // 2, 1)
        self.head = nn.Conv2d(2 * hidden_channels, local * patch * patch, 1)
        self.unpatch = nn.PixelShuffle(patch)
        self.local = nn.Conv2d(1, local, 3, padding=1)          # full-resolution view of the last map
        # leaky: with a plain ReLU these units could all die early in a short schedule, leaving persistence
        self.refine = nn.Sequential(nn.Conv2d(2 * local, local, 3, padding=1), nn.LeakyReLU(0.1),
                                    nn.Conv2d(local, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        batch, steps, height, width = x.shape
        if height % self.patch or width % self.patch:
            raise ValueError(f"map size {height}x{width} is not a multiple of patch {self.patch}")
        frames = self.embed(x.reshape(batch * steps, 1, height, width))
        frames = frames.reshape(batch, steps, *frames.shape[1:])
        h = frames.new_zeros(batch, self.encoder.hidden, *frames.shape[-2:])
        state = (h, h)
        for frame in frames.unbind(1):  # not frames[:, t]: each of those backpropagates a zero-filled copy
            state = self.encoder(frame, state)
        encoded, last = state[0], x[:, -1:]
        outputs = []
        for _ in range(self.horizon):
            state = self.forecaster(self.embed(last), state)
            coarse = torch.relu(self.unpatch(self.head(torch.cat([state[0], encoded], dim=1))))
            last = last + self.refine(torch.cat([coarse, torch.relu(self.local(last))], dim=1))
            outputs.append(last)
        return torch.cat(outputs, dim=1)
