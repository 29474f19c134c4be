"""LSTM regressor: stacked (Bi)LSTM, then an MLP head, per step (seq2seq) or on the last step.

A forecaster (not seq2seq) can normalise each window inside the network (`normalisation`), so that
training, evaluation, predict and export all share it: its input and output stay in the units of the
training scaler, and a series whose level leaves the training range is still read relative to itself.
"""

from __future__ import annotations

import torch
from torch import nn

NORMALISATIONS = ("global", "difference", "revin")


class LSTMRegressor(nn.Module):
    """(batch, time, input_size) -> (batch, time, output_size) if seq2seq else (batch, output_size).

    `head_hidden` lists the widths of hidden layers in the head (ReLU + dropout between), so the
    frequency filter uses a bare linear head ([]) and the NDVI BiLSTM uses FC 256 -> 64 -> 1 ([64]).

    `normalisation` (forecasters only; output k is input feature `target_index[k]` one step on):
    - global: the window as given (standardised by the training scaler upstream);
    - difference: the window minus its last step; the output is the last observed target value plus
      the head's output, whose final layer starts at zero, so an untrained network is persistence;
    - revin: reversible instance normalisation (Kim et al., ICLR 2022): each window and feature minus
      its mean, over its std (+ eps), then a learnt per-feature affine; the targets' outputs are mapped
      back through that feature's affine, std and mean.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float,
                 output_size: int, seq2seq: bool = False, bidirectional: bool = False,
                 head_hidden: list[int] | None = None, normalisation: str = "global",
                 target_index: list[int] | None = None, eps: float = 1e-5) -> None:
        super().__init__()
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got "
                             f"{normalisation!r}")
        if normalisation != "global":
            if seq2seq:
                raise ValueError(f"normalisation {normalisation!r} is for next-step forecasters, not seq2seq")
            if target_index is None or len(target_index) != output_size or \
                    not all(0 <= i < input_size for i in target_index):
                raise ValueError(f"normalisation {normalisation!r} needs target_index: {output_size} input "
                                 f"feature indices (of {input_size}), got {target_index!r}")
        self.seq2seq = seq2seq
        self.normalisation = normalisation
        self.target_index = list(target_index) if target_index is not None else None
        self.eps = eps
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        width = hidden_size * (2 if bidirectional else 1)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        for hidden in head_hidden or []:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        out = nn.Linear(width, output_size)
        layers.append(out)
        self.head = nn.Sequential(*layers)
        if normalisation == "difference":   # a zero change at the start: exactly persistence
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
        if normalisation == "revin":
            self.affine_weight = nn.Parameter(torch.ones(input_size))
            self.affine_bias = nn.Parameter(torch.zeros(input_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalisation == "difference":
            last = x[:, -1:, :]
            return last[:, 0, self.target_index] + self._core(x - last)
        if self.normalisation == "revin":
            mean = x.mean(dim=1, keepdim=True)
            std = torch.sqrt(((x - mean) ** 2).mean(dim=1, keepdim=True) + self.eps)
            out = self._core((x - mean) / std * self.affine_weight + self.affine_bias)
            index = self.target_index
            out = (out - self.affine_bias[index]) / (self.affine_weight[index] + self.eps * self.eps)
            return out * std[:, 0, index] + mean[:, 0, index]
        return self._core(x)

    def _core(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out if self.seq2seq else out[:, -1])
