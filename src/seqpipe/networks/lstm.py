"""LSTM regressor: stacked (Bi)LSTM, then an MLP head, per step (seq2seq) or on the last step."""

from __future__ import annotations

import torch
from torch import nn


class LSTMRegressor(nn.Module):
    """(batch, time, input_size) -> (batch, time, output_size) if seq2seq else (batch, output_size).

    `head_hidden` lists the widths of hidden layers in the head (ReLU + dropout between), so the
    frequency filter uses a bare linear head ([]) and the NDVI BiLSTM uses FC 256 -> 64 -> 1 ([64]).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float,
                 output_size: int, seq2seq: bool = False, bidirectional: bool = False,
                 head_hidden: list[int] | None = None) -> None:
        super().__init__()
        self.seq2seq = seq2seq
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        width = hidden_size * (2 if bidirectional else 1)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        for hidden in head_hidden or []:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, output_size))
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out if self.seq2seq else out[:, -1])
