"""A next-step forecaster that cannot do worse than its linear part on validation data: a frozen ridge
forecast plus an LSTM's correction, gated on the validation split (LSTNet's linear "highway", Lai et al.
2018, with the network learning the linear model's residual).

Inputs are windows (batch, window, features) standardised by the training scaler; output k is input
feature `target_index[k]` one step after the window. Both parts read the same design:
- the window minus its last step (the changes that lead to it), and
- the last step clipped to the training range (its level, which carries mean reversion, but never
  extrapolated: a level beyond anything trained on reads as the nearest one seen).

forecast = last value + linear(design) + gate * lstm(design).

`prepare(x, y)` (called by the train stage before training) fits the linear part by ridge regression on
the training windows, in float64, and freezes it; the LSTM head's last layer starts at zero, so the
untrained network is exactly that linear forecast. `calibrate(x, y)` (after training, on the validation
split) sets each target's gate to the least-squares weight of the correction in [0, 1], or to 0 unless
that lowers the validation squared error by more than two standard errors of the per-window gain (then
the forecast is the linear part alone), and then the split-conformal half-widths of the prediction
intervals (`interval_levels`) from the validation residuals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from seqpipe.conformal import conformal_halfwidths

PREPARE_CHUNK = 1 << 15   # windows that prepare reads at once (more: in chunks of this many)
FORWARD_CHUNK = 1 << 12   # windows that calibrate runs through the network at once (its activations)
SIGNIFICANCE = 2.0   # standard errors by which the correction must improve the validation error to be kept


class LinearResidualLSTM(nn.Module):
    """(batch, window, input_size) -> (batch, output_size): frozen ridge + gated LSTM correction."""

    # buffers (register_buffer in __init__)
    low: torch.Tensor
    high: torch.Tensor
    design_mean: torch.Tensor
    design_std: torch.Tensor
    linear_weight: torch.Tensor
    linear_bias: torch.Tensor
    gate: torch.Tensor
    halfwidth: torch.Tensor

    def __init__(self, input_size: int, window: int, hidden_size: int, num_layers: int, dropout: float,
                 target_index: list[int], linear_alpha: float, interval_levels: list[float]) -> None:
        super().__init__()
        if not target_index or not all(0 <= i < input_size for i in target_index):
            raise ValueError(f"target_index: input feature indices (of {input_size}), got {target_index!r}")
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        if not all(0 < level < 1 for level in interval_levels):
            raise ValueError(f"interval_levels must lie in (0, 1), got {interval_levels!r}")
        self.target_index = list(target_index)
        self.linear_alpha = linear_alpha
        self.interval_levels = [float(level) for level in interval_levels]
        outputs, n_design = len(target_index), (window - 1) * input_size + input_size
        self.lstm = nn.LSTM(2 * input_size, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        out = nn.Linear(hidden_size, outputs)
        self.head = nn.Sequential(nn.Dropout(dropout), out)
        nn.init.zeros_(out.weight)  # an untrained network adds nothing to the linear forecast
        nn.init.zeros_(out.bias)
        # fitted by `prepare` / `calibrate`, never by the optimiser; saved in the state dict
        self.register_buffer("low", torch.full((input_size,), -torch.inf))
        self.register_buffer("high", torch.full((input_size,), torch.inf))
        self.register_buffer("design_mean", torch.zeros(n_design))
        self.register_buffer("design_std", torch.ones(n_design))
        self.register_buffer("linear_weight", torch.zeros(n_design, outputs))
        self.register_buffer("linear_bias", torch.zeros(outputs))
        self.register_buffer("gate", torch.ones(outputs))
        self.register_buffer("halfwidth", torch.full((len(interval_levels), outputs), torch.inf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last, changes, level = self._inputs(x)
        linear = last + apply_ridge(_design(changes, level), self.linear_fit)
        return linear + self.gate * self._correction(changes, level)

    @property
    def linear_fit(self) -> tuple[torch.Tensor, ...]:
        return self.design_mean, self.design_std, self.linear_weight, self.linear_bias

    def linear_forecast(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The linear part alone: what the forecast is without the network."""
        with torch.no_grad():
            design, last = self.design(torch.as_tensor(x))
            return last + apply_ridge(design, self.linear_fit)

    @torch.no_grad()
    def refit_linear_forecast(self, x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The linear part refit by the same ridge on windows `x_fit` and next values `y_fit` (a backtest's
        expanding window), applied to windows `x`, in float64 (numpy in and out: evaluation code calls it
        without importing torch)."""
        design, last = self.design(torch.as_tensor(x_fit))
        fit = ridge(design.double(), torch.as_tensor(y_fit).double() - last.double(), self.linear_alpha)
        design, last = self.design(torch.as_tensor(x))
        return (last.double() + apply_ridge(design.double(), fit)).numpy()

    @torch.no_grad()
    def linear_rows(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(design, change y - last) of windows `x` and next values `y` in float64 numpy: the rows that
        `refit_linear_forecast` regresses, for a refit whose windows are read in chunks (`Moments`)."""
        design, last = self.design(torch.as_tensor(x))
        return design.double().numpy(), (torch.as_tensor(y).double() - last.double()).numpy()

    @torch.no_grad()
    def refit_linear_forecast_from(self, n: int, centred: tuple[np.ndarray, ...],
                                   x: np.ndarray) -> np.ndarray:
        """`refit_linear_forecast` from the `linear_rows` of `n` fit windows as their (design mean, centred
        X'X, X'Y, target mean), e.g. `baselines.Moments.centred()`, applied to windows `x`."""
        mean_x, xx, xy, mean_y = (torch.from_numpy(a) for a in centred)
        fit = ridge_from_cross_products(n, mean_x, xx, xy, mean_y, self.linear_alpha)
        design, last = self.design(torch.as_tensor(x))
        return (last.double() + apply_ridge(design.double(), fit)).numpy()

    def design(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(design matrix, last target values) of windows `x`: what the linear part regresses on."""
        last, changes, level = self._inputs(x)
        return _design(changes, level), last

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        final = x[:, -1, :]
        level = torch.minimum(torch.maximum(final, self.low.to(x.dtype)), self.high.to(x.dtype))
        return final[:, self.target_index], x - final[:, None, :], level

    def _correction(self, changes: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        steps = torch.cat([changes, level[:, None, :].expand(-1, changes.shape[1], -1)], dim=2)
        out, _ = self.lstm(steps)
        return self.head(out[:, -1])

    @torch.no_grad()
    def prepare(self, x: Any, y: Any) -> None:
        """Fit and freeze the linear part on training windows `x` and next values `y` (tensors, or
        anything sliced into tensors: windows cut on demand): the training range for the level's clip,
        then ridge regression of the change y - last on the design. Up to PREPARE_CHUNK windows are
        fitted in one piece; more are read PREPARE_CHUNK at a time (`ridge_in_chunks`)."""
        if len(x) <= PREPARE_CHUNK:
            x, y = x[:], y[:]
            self.low.copy_(x[:, -1, :].amin(dim=0))
            self.high.copy_(x[:, -1, :].amax(dim=0))
            design, last = self.design(x)
            fit = ridge(design.double(), y.double() - last.double(), self.linear_alpha)
        else:
            spans = [slice(s, s + PREPARE_CHUNK) for s in range(0, len(x), PREPARE_CHUNK)]
            self.low.copy_(torch.stack([x[s][:, -1, :].amin(dim=0) for s in spans]).amin(dim=0))
            self.high.copy_(torch.stack([x[s][:, -1, :].amax(dim=0) for s in spans]).amax(dim=0))

            def pieces() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
                for s in spans:
                    design, last = self.design(x[s])
                    yield design.double(), y[s].double() - last.double()

            fit = ridge_in_chunks(pieces, self.linear_alpha)
        for buffer, value in zip(self.linear_fit, fit, strict=True):
            buffer.copy_(value)

    @torch.no_grad()
    def calibrate(self, x: Any, y: Any) -> dict:
        """On validation windows `x` (tensors, or windows cut on demand, run FORWARD_CHUNK at a time)
        and next values `y`: each target's gate (the least-squares weight of the correction, in [0, 1]),
        then the conformal half-widths of the intervals. Returns what it set, for model.pt."""
        self.eval()
        spans = [slice(s, s + FORWARD_CHUNK) for s in range(0, len(x), FORWARD_CHUNK)]
        linear = torch.cat([self.linear_forecast(x[s]) for s in spans]).double()
        correction = torch.cat([self._correction(*self._inputs(x[s])[1:]) for s in spans]).double()
        y = y[:]
        residual = y.double() - linear
        fitted = ((residual * correction).sum(0) / (correction ** 2).sum(0).clamp(min=1e-12)).clamp(0.0, 1.0)
        # keep the correction only where it lowers the validation squared error by more than two standard
        # errors of the per-window improvement: a small validation split does not earn it by chance
        gain = residual ** 2 - (residual - fitted * correction) ** 2
        standard_error = gain.std(0, correction=1) / len(gain) ** 0.5
        self.gate.copy_(torch.where(gain.mean(0) > SIGNIFICANCE * standard_error, fitted,
                                    torch.zeros_like(fitted)))
        errors = (y.double() - torch.cat([self(x[s]) for s in spans]).double()).abs().numpy()
        self.halfwidth.copy_(torch.from_numpy(conformal_halfwidths(errors, self.interval_levels)))
        return {"gate": self.gate.tolist(), "calibration_windows": len(x),
                "interval_levels": self.interval_levels, "halfwidth": self.halfwidth.tolist()}


def _design(changes: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """The linear part's inputs: each step's change to the last one (the last, always 0, left out), then
    the clipped level."""
    return torch.cat([changes[:, :-1].flatten(1), level], dim=1)


def ridge(design: torch.Tensor, target: torch.Tensor, alpha: float) -> tuple[torch.Tensor, ...]:
    """Ridge regression with an unpenalised intercept by the normal equations on standardised columns (so
    that `alpha` weighs every column alike, whatever its scale: a trending series' steps are tiny next to
    its levels): (column mean, column std, weight, bias), the forecast being ((design - mean) / std) @ weight
    + bias. A column with no spread beyond rounding (a constant feature's changes) keeps std 1, and so its
    weight stays near 0."""
    mean_x, mean_y = design.mean(dim=0), target.mean(dim=0)
    std_x = design.std(dim=0, correction=0)
    std_x = torch.where(std_x > 1e-6 * (1 + mean_x.abs()), std_x, torch.ones_like(std_x))
    scaled = (design - mean_x) / std_x
    gram = scaled.T @ scaled + alpha * torch.eye(design.shape[1], dtype=design.dtype)
    return mean_x, std_x, torch.linalg.solve(gram, scaled.T @ (target - mean_y)), mean_y


def ridge_in_chunks(pieces: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
                    alpha: float) -> tuple[torch.Tensor, ...]:
    """`ridge` of the rows that `pieces()` yields as (design, target) chunks, each call yielding them all
    again: column sums (pass 1), then the centred cross-products (pass 2), so that memory holds one chunk,
    never the design. The same fit as `ridge` on the stacked rows, up to float64 rounding."""
    zero = torch.zeros((), dtype=torch.float64)
    n, sum_x, sum_y = 0, zero, zero
    for design, target in pieces():
        n, sum_x, sum_y = n + len(design), sum_x + design.sum(dim=0), sum_y + target.sum(dim=0)
    mean_x, mean_y = sum_x / n, sum_y / n
    xx, xy = zero, zero
    for design, target in pieces():
        centred = design - mean_x
        xx, xy = xx + centred.T @ centred, xy + centred.T @ (target - mean_y)
    return ridge_from_cross_products(n, mean_x, xx, xy, mean_y, alpha)


def ridge_from_cross_products(n: int, mean_x: torch.Tensor, xx: torch.Tensor, xy: torch.Tensor,
                              mean_y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, ...]:
    """`ridge` of `n` rows from their column means and centred cross-products X'X and X'Y."""
    std_x = (torch.diagonal(xx) / n).sqrt()
    std_x = torch.where(std_x > 1e-6 * (1 + mean_x.abs()), std_x, torch.ones_like(std_x))
    gram = xx / (std_x[:, None] * std_x[None, :]) + alpha * torch.eye(len(std_x), dtype=xx.dtype)
    return mean_x, std_x, torch.linalg.solve(gram, xy / std_x[:, None]), mean_y


def apply_ridge(design: torch.Tensor, fit: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The forecast of a `ridge` fit for `design`."""
    mean, std, weight, bias = (t.to(design.dtype) for t in fit)
    return ((design - mean) / std) @ weight + bias
