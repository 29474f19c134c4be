"""bandwidth's backtest refits, reading the windows in chunks (issue 28): the forecaster's linear part
and the ridge baseline refit on the windows before each origin (an expanding window).

Fit sets of at most ONE_PIECE windows are fitted in one piece, exactly as from whole arrays (the default
data's 14980 windows: the same numbers as before); larger ones from cross-products accumulated CHUNK
windows at a time in one pass over the windows (`baselines.Moments`), the same fits up to float64
rounding. Forecasts are made CHUNK windows at a time too (the default data's 2247 test windows are one
chunk), so memory holds one chunk of windows, never a split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from seqpipe import baselines
from seqpipe.data.windows import Windows, map_chunks

if TYPE_CHECKING:  # not at run time: it imports torch
    from seqpipe.networks.forecaster import LinearResidualLSTM

ONE_PIECE = 1 << 15   # fit sets up to this many windows are read whole (at most 24 MB of float32 windows)
CHUNK = 1 << 13       # windows read at once beyond that (at 100x the default data: ~60 MB less than 1 << 15)


def in_chunks(forecast: Callable[[np.ndarray], np.ndarray], windows: Windows) -> np.ndarray:
    """`forecast` of every window, CHUNK windows at a time, concatenated (a forecast is small per window)."""
    return map_chunks(windows, forecast, CHUNK)


def _spans(end: int) -> list[slice]:
    """The first `end` windows, CHUNK at a time."""
    return [slice(start, min(start + CHUNK, end)) for start in range(0, end, CHUNK)]


def linear_parts(network: LinearResidualLSTM, x: Windows, y: np.ndarray, ends: Sequence[int],
                 targets: Sequence[Windows]) -> list[np.ndarray]:
    """For each of ascending `ends`: the forecaster's linear part refit on windows `x[:end]` and next
    values `y[:end]`, forecasting the windows `targets[i]` (float64)."""
    if ends[-1] <= ONE_PIECE:
        return [network.refit_linear_forecast(x[:end], y[:end], t[:])
                for end, t in zip(ends, targets, strict=True)]
    pieces = (network.linear_rows(x[s], y[s]) for s in _spans(ends[-1]))
    moments = baselines.expanding_moments(pieces, ends)
    return [in_chunks(partial(network.refit_linear_forecast_from, m.n, m.centred()), t)
            for m, t in zip(moments, targets, strict=True)]


def ridges(x: Windows, y: np.ndarray, ends: Sequence[int], targets: Sequence[Windows],
           alpha: float) -> list[np.ndarray]:
    """For each of ascending `ends`: the ridge baseline (`baselines.linear`) fitted on windows `x[:end]` and
    next values `y[:end]`, forecasting the windows `targets[i]`."""
    if ends[-1] <= ONE_PIECE:
        return [baselines.linear(x[:end], y[:end], t[:], alpha) for end, t in zip(ends, targets, strict=True)]
    moments = baselines.expanding_moments(((x[s], y[s]) for s in _spans(ends[-1])), ends)
    fits = [m.linear(alpha) for m in moments]
    return [in_chunks(partial(baselines.linear_apply, f, like=y[:1]), t)
            for f, t in zip(fits, targets, strict=True)]
