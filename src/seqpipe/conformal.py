"""Split-conformal prediction intervals (Vovk et al. 2005; Angelopoulos & Bates 2021, section 1): the
half-width at level q is the ceil((n + 1) q)-th smallest absolute residual of n calibration points,
per target; with exchangeable errors the interval covers a new point with probability >= q."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def conformal_halfwidths(abs_errors: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """(levels, targets) half-widths from (n, targets) absolute calibration residuals; inf where n is
    too small for the level (ceil((n + 1) q) > n)."""
    errors = np.sort(np.asarray(abs_errors, np.float64).reshape(len(abs_errors), -1), axis=0)
    n = len(errors)
    out = np.full((len(levels), errors.shape[1]), np.inf)
    for i, level in enumerate(levels):
        rank = math.ceil((n + 1) * level)
        if rank <= n:
            out[i] = errors[rank - 1]
    return out


def level_label(level: float) -> str:
    """A nominal level as the percent that names its columns and keys: 0.8 -> '80', 0.975 -> '97.5'."""
    return f"{round(level * 100, 6):g}"


def interval_bounds(point: np.ndarray, halfwidths: np.ndarray) -> np.ndarray:
    """(levels, 2, rows, targets): the lower and upper bound of each level's interval around `point`
    (rows, targets), `halfwidths` being (levels, targets)."""
    h = np.asarray(halfwidths, np.float64)[:, None, :]
    return np.stack([point - h, point + h], axis=1)


def coverage(actual: np.ndarray, bounds: np.ndarray, levels: Sequence[float]) -> dict[str, dict[str, float]]:
    """Per level: the share of `actual` (rows, targets) inside `bounds` (levels, 2, rows, targets), the
    nominal level beside it and the mean width."""
    out = {}
    for i, level in enumerate(levels):
        low, high = bounds[i, 0], bounds[i, 1]
        inside = (actual >= low) & (actual <= high)
        out[level_label(level)] = {"nominal": float(level), "coverage": float(inside.mean()),
                                             "mean_width": float(np.mean(high - low))}
    return out
