"""Baselines every metric is reported next to: persistence, seasonal naive, drift, ETS, least-squares
linear, band-pass, climatology, majority class, logistic."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# scipy and statsmodels are imported inside the functions that need them: every other stage would pay
# their import time. Ridge and logistic regression are numpy (scikit-learn's import alone is ~1.5 s).


def persistence(last_values: np.ndarray) -> np.ndarray:
    """Forecast = the last observed value (the windows' final step)."""
    return np.asarray(last_values, dtype=np.float64)


DAY_S, WEEK_S, YEAR_S = 86400.0, 7 * 86400.0, 365.25 * 86400.0


def season_from_cadence(cadence_s: float) -> int:
    """Steps in one cycle of the calendar unit above a series' cadence: a day below daily data (60 s: 1440,
    1 h: 24), a week for daily data (7), a year for weekly to quarterly data (52, 12, 4); 1 (no season) for
    yearly and coarser data, as Hyndman & Koehler (2006) use for non-seasonal series."""
    if not cadence_s > 0:
        raise ValueError(f"cadence must be > 0 s, got {cadence_s}")
    unit = DAY_S if cadence_s < DAY_S else WEEK_S if cadence_s < WEEK_S else YEAR_S
    return max(int(round(unit / cadence_s)), 1)


def seasonal_naive(series: np.ndarray, at: np.ndarray | int, season: int) -> np.ndarray:
    """Forecast of `series[at]` (time on axis 0): the value one season earlier, `series[at - season]`
    (season 1: the last value)."""
    at = np.asarray(at)
    if season < 1 or np.any(at - season < 0) or np.any(at > len(series)):
        raise ValueError(f"seasonal naive: season {season} needs history before every forecast point")
    return np.asarray(series, dtype=np.float64)[at - season]


def drift(last: np.ndarray, first: np.ndarray, steps: np.ndarray | int) -> np.ndarray:
    """Random walk with drift: the last value plus the mean change per step over the history up to the
    forecast origin, `last + (last - first) / steps`, where `first` is the history's first value, `steps`
    before `last` (Hyndman & Athanasopoulos, FPP3 5.2). Zero steps of history: the last value."""
    last, first = np.asarray(last, dtype=np.float64), np.asarray(first, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    return last + np.where(steps > 0, (last - first) / np.maximum(steps, 1), 0.0)


def ets(series: np.ndarray, fit: slice) -> tuple[np.ndarray, dict[str, float]]:
    """ETS(A,Ad,N), Holt's damped additive trend with additive errors, fitted by maximum likelihood
    (statsmodels ETSModel) on `series[fit]` only; returns the one-step-ahead forecast of every point of
    `series[fit.start:]` made with those parameters (each from the values before it) and the parameters."""
    import warnings

    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    values = np.asarray(series, dtype=np.float64)
    start = fit.start or 0
    options = {"error": "add", "trend": "add", "damped_trend": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = ETSModel(values[fit], **options).fit(disp=False)
    forecast = ETSModel(values[start:], **options).smooth(fitted.params).fittedvalues
    return np.asarray(forecast), {k: float(v) for k, v in zip(fitted.param_names, fitted.params, strict=True)}


def holt_damped(windows: np.ndarray, alpha: float, beta: float, phi: float) -> np.ndarray:
    """ETS(A,Ad,N) one-step forecast after each row of (n, time) `windows`, all rows at once: the level
    starts at the first value and the trend at the first change, then each value updates them
    (l = l' + phi b' + alpha e, b = phi b' + beta e, e = value - (l' + phi b')). The same recursion and
    parameters as statsmodels' ETSModel with those initial states (checked in tests/test_baselines.py)."""
    w = np.asarray(windows, dtype=np.float64)
    level, trend = w[:, 0].copy(), w[:, 1] - w[:, 0]
    for k in range(w.shape[1]):
        error = w[:, k] - (level + phi * trend)
        level, trend = level + phi * trend + alpha * error, phi * trend + beta * error
    return level + phi * trend


def fit_holt_damped(windows: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """alpha, beta, phi of `holt_damped` that minimise the squared one-step errors over every (window,
    next value) pair: maximum likelihood with Gaussian errors pooled over many short series, each too
    short for a fit of its own. Bounds as statsmodels': 0 < beta <= alpha < 1, 0.8 <= phi <= 0.98."""
    from scipy.optimize import minimize

    w, y = np.asarray(windows, dtype=np.float64), np.asarray(targets, dtype=np.float64).ravel()

    def loss(theta: np.ndarray) -> float:
        alpha, beta_share, phi = theta
        return float(np.mean((holt_damped(w, alpha, alpha * beta_share, phi) - y) ** 2))

    best = minimize(loss, np.array([0.5, 0.1, 0.9]), method="L-BFGS-B",
                    bounds=[(1e-4, 0.9999), (1e-4, 1.0), (0.8, 0.98)])
    alpha, beta_share, phi = best.x
    return {"smoothing_level": float(alpha), "smoothing_trend": float(alpha * beta_share),
            "damping_trend": float(phi)}


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


LinearFit = tuple[np.ndarray, np.ndarray, np.ndarray]   # (column means of x, coefficients, means of y)


def _ridge(x_mean: np.ndarray, xx: np.ndarray, xy: np.ndarray, y_mean: np.ndarray, alpha: float) -> LinearFit:
    """The ridge fit from centred cross-products X'X and X'Y (xx is changed in place)."""
    xx.flat[::xx.shape[0] + 1] += alpha
    return x_mean, np.linalg.solve(xx, xy), y_mean


def linear_apply(fit: LinearFit, x_test: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A `linear` fit's prediction for `x_test`, shaped and typed as targets `like` (a sample is enough)."""
    x_mean, coef, y_mean = fit
    prediction = (_flat(x_test) - x_mean) @ coef + y_mean
    return prediction.astype(np.result_type(x_test, like), copy=False).reshape((len(x_test), *like.shape[1:]))


def linear(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression from flattened windows to flattened targets (a least-squares linear filter), with an
    unpenalised intercept, solved in float64 by the normal equations (scikit-learn's Ridge to ~1e-6; numpy
    only, so evaluate does not pay scikit-learn's import). `Moments` fits the same from chunks."""
    x, y = _flat(x_train), _flat(y_train)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    x = x - x_mean  # not in place: float64 inputs are the caller's arrays
    return linear_apply(_ridge(x_mean, x.T @ x, x.T @ (y - y_mean), y_mean, alpha), x_test, y_train)


class Moments:
    """What a least-squares fit needs of its rows, added chunk by chunk (`add`): their count, the column
    means and the centred cross-products X'X and X'Y, in float64. Rows are shifted by the first chunk's
    column means before they are multiplied (the shifted-data algorithm), so centring loses no precision
    where a column's mean is large next to its spread. `linear` fits the same from whole arrays; the two
    agree to float64 rounding (~1e-12 relative)."""

    def __init__(self) -> None:
        self.n = 0
        self.shift_x = self.shift_y = self.sum_x = self.sum_y = self.xx = self.xy = np.zeros(0)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Add rows: `x` and `y` with one row per sample (flattened beyond the first axis)."""
        if not len(x):
            return
        x, y = _flat(x), _flat(y)
        if not self.n:
            self.shift_x, self.shift_y = x.mean(axis=0), y.mean(axis=0)
            self.sum_x, self.sum_y = np.zeros(x.shape[1]), np.zeros(y.shape[1])
            self.xx, self.xy = np.zeros((x.shape[1], x.shape[1])), np.zeros((x.shape[1], y.shape[1]))
        dx, dy = x - self.shift_x, y - self.shift_y
        self.n += len(x)
        self.sum_x, self.sum_y = self.sum_x + dx.sum(axis=0), self.sum_y + dy.sum(axis=0)
        self.xx, self.xy = self.xx + dx.T @ dx, self.xy + dx.T @ dy

    def copy(self) -> Moments:
        out = Moments()
        out.__dict__.update(self.__dict__)   # every field is replaced, never changed in place, by `add`
        return out

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(mean of x, X'X, X'Y, mean of y) about the rows' own means."""
        if not self.n:
            raise ValueError("least squares: no rows to fit")
        dx, dy = self.sum_x / self.n, self.sum_y / self.n
        return (self.shift_x + dx, self.xx - self.n * np.outer(dx, dx), self.xy - self.n * np.outer(dx, dy),
                self.shift_y + dy)

    def linear(self, alpha: float) -> LinearFit:
        """`linear`'s ridge fit of these rows (apply it with `linear_apply`)."""
        x_mean, xx, xy, y_mean = self.centred()
        return _ridge(x_mean, xx, xy, y_mean, alpha)


def expanding_moments(pieces: Iterable[tuple[np.ndarray, np.ndarray]], ends: Sequence[int]) -> list[Moments]:
    """The Moments of the first `end` rows for each of ascending `ends` (a backtest's expanding windows),
    from (x, y) chunks in row order read once; rows after the last end are not read."""
    if list(ends) != sorted(ends) or not ends or ends[0] < 1:
        raise ValueError(f"expanding_moments: ends must be ascending and positive, got {list(ends)}")
    out: list[Moments] = []
    moments, done = Moments(), 0   # rows added so far
    for x, y in pieces:
        first = 0
        while len(out) < len(ends) and ends[len(out)] <= done + len(x) - first:
            take = ends[len(out)] - done
            moments.add(x[first:first + take], y[first:first + take])
            done, first = done + take, first + take
            out.append(moments.copy())
        if len(out) == len(ends):
            return out
        moments.add(x[first:], y[first:])
        done += len(x) - first
    raise ValueError(f"expanding_moments: {done} rows, fewer than the last end {ends[-1]}")


def bandpass(signals: np.ndarray, center_hz: float, width_hz: float, order: int,
             sample_rate_hz: float) -> np.ndarray:
    """Zero-phase Butterworth band-pass around `center_hz`, applied to each row of `signals`."""
    from scipy import signal as sps

    high = min(center_hz + width_hz, sample_rate_hz / 2 * 0.999)
    # an octave at most below; and below `high` where a tiny width or a centre by Nyquist would close the band
    low = min(max(center_hz - width_hz, center_hz / 2), high * 0.999)
    sos = sps.butter(order, [low, high], btype="bandpass", fs=sample_rate_hz, output="sos")
    # scipy's default edge padding, cut to the series where a high order would need more than it has
    edge = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    return sps.sosfiltfilt(sos, signals, axis=-1, padlen=min(edge, signals.shape[-1] - 1))


class Climatology:
    """Per day of year, the sums and counts of valid map values, added chunk by chunk (`add`); `at` gives the
    mean maps. Chunks added in order give the same sums, bit for bit, as the maps added at once."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.sums, self.counts = np.zeros((367, *shape)), np.zeros((367, *shape))

    def add(self, maps: np.ndarray, doy: np.ndarray, valid: np.ndarray) -> None:
        """Add maps (N, H, W) on days of year `doy` (N), where `valid` (N, H, W)."""
        maps, doy, valid = np.asarray(maps, np.float64), np.asarray(doy).ravel(), np.asarray(valid, bool)
        np.add.at(self.sums, doy, np.where(valid, maps, 0.0))
        np.add.at(self.counts, doy, valid)

    def at(self, query_doy: np.ndarray) -> np.ndarray:
        """The mean map per day of year evaluated at `query_doy` (any shape). A day of year with no valid
        sample takes the nearest day of year that has one (circularly)."""
        sums, counts = self.sums, self.counts
        seen = np.flatnonzero(counts[1:].reshape(366, -1).any(axis=1)) + 1
        if len(seen) == 0:
            raise ValueError("climatology: no valid samples")
        table = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        nearest = {d: seen[np.argmin(np.minimum(abs(seen - d), 366 - abs(seen - d)))] for d in range(1, 367)}
        for d in range(1, 367):  # per pixel: fall back to the nearest day of year with data
            holes = np.isnan(table[d])
            table[d][holes] = np.nan_to_num(table[nearest[d]][holes])
        query = np.asarray(query_doy)
        return table[query.ravel()].reshape(*query.shape, *sums.shape[1:])


def day_of_year_climatology(maps: np.ndarray, doy: np.ndarray, valid: np.ndarray,
                            query_doy: np.ndarray) -> np.ndarray:
    """Mean map per day of year over `maps` (N, H, W) where `valid`; evaluated at `query_doy` (any shape).

    A day of year with no valid sample takes the nearest day of year that has one (circularly).
    """
    climatology = Climatology(np.shape(maps)[1:])
    climatology.add(maps, doy, valid)
    return climatology.at(query_doy)


def majority_class(y_train: np.ndarray, n_test: int) -> np.ndarray:
    """Predict the most frequent training class for every test sample."""
    return np.full(n_test, np.bincount(np.asarray(y_train)).argmax(), dtype=np.int64)


def band_statistics(x: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(n, bands, h, w) -> (n, 6 * bands): per-band mean, std, min, 5th/95th percentile, max; read `chunk`
    patches at a time (a memory-mapped split is never held whole; each row's numbers are the same)."""
    def of(part: np.ndarray) -> np.ndarray:
        flat = np.asarray(part, dtype=np.float64).reshape(len(part), x.shape[1], math.prod(x.shape[2:]))
        lo, hi = np.percentile(flat, [5, 95], axis=-1)
        return np.concatenate([flat.mean(-1), flat.std(-1), flat.min(-1), lo, hi, flat.max(-1)], axis=1)
    return np.concatenate([of(x[k:k + chunk]) for k in range(0, len(x), chunk)] or [of(x[:0])])


def logistic(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float,
             max_iter: int) -> np.ndarray:
    """Class-balanced multinomial logistic regression on standardised per-patch band statistics -> class ids.

    scikit-learn's objective (LogisticRegression(C=c, class_weight="balanced") on StandardScaler
    features: C x the weighted log loss + ||coef||^2 / 2, intercepts unpenalised), minimised by Newton's
    method with a backtracking line search in float64, at most `max_iter` steps; numpy only, so evaluate
    does not pay scikit-learn's import (tests compare it with scikit-learn)."""
    x = band_statistics(x_train)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    design = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    classes, y = np.unique(np.asarray(y_train), return_inverse=True)
    k, d = len(classes), design.shape[1]
    onehot = np.eye(k)[y]
    weight = c * (len(y) / (k * np.bincount(y, minlength=k)))[y]
    penalty = np.ones((k, d))
    penalty[:, -1] = 0.0  # no penalty on the intercepts

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logits = design @ theta.T
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return float(-(weight * (onehot * log_p).sum(axis=1)).sum() + 0.5 * (penalty * theta ** 2).sum()), \
            np.exp(log_p)

    theta = np.zeros((k, d))
    value, prob = objective(theta)
    wx = design * weight[:, None]
    for _ in range(max_iter):
        grad = (prob - onehot).T @ wx + penalty * theta
        # Hessian of the weighted softmax loss: sum_i w_i (diag(p_i) - p_i p_i^T) (x) x_i x_i^T
        hess = np.empty((k * d, k * d))
        for a in range(k):
            for b_ in range(k):
                coupling = prob[:, a] * ((a == b_) - prob[:, b_])
                hess[a * d:(a + 1) * d, b_ * d:(b_ + 1) * d] = (wx * coupling[:, None]).T @ design
        hess += np.diag(penalty.ravel()) + 1e-10 * np.eye(k * d)  # the softmax's shift direction is flat
        direction = np.linalg.solve(hess, grad.ravel()).reshape(k, d)
        step = 1.0
        while True:
            candidate = theta - step * direction
            new_value, new_prob = objective(candidate)
            if new_value <= value or step < 1e-10:
                break
            step /= 2
        converged = value - new_value <= 1e-12 * max(1.0, abs(value))
        theta, value, prob = candidate, new_value, new_prob
        if converged:
            break
    test = np.hstack([(band_statistics(x_test) - mean) / std, np.ones((len(x_test), 1))])
    return classes[np.argmax(test @ theta.T, axis=1)]
