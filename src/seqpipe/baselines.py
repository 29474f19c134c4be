"""Baselines every metric is reported next to: persistence, least-squares linear, band-pass."""

from __future__ import annotations

import numpy as np

# scipy and scikit-learn are imported inside the functions that need them: every other stage would pay
# their import time.


def persistence(last_values: np.ndarray) -> np.ndarray:
    """Forecast = the last observed value (the windows' final step)."""
    return np.asarray(last_values, dtype=np.float64)


def linear(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression from flattened windows to flattened targets (a least-squares linear filter), with an
    unpenalised intercept, solved in float64 by the normal equations (scikit-learn's Ridge to ~1e-6; numpy
    only, so evaluate does not pay scikit-learn's import)."""
    def flat(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    x, y = flat(x_train), flat(y_train)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    x = x - x_mean  # not in place: float64 inputs are the caller's arrays
    gram = x.T @ x
    gram.flat[::gram.shape[0] + 1] += alpha
    coef = np.linalg.solve(gram, x.T @ (y - y_mean))
    prediction = (flat(x_test) - x_mean) @ coef + y_mean
    return prediction.astype(np.result_type(x_test, y_train), copy=False).reshape((len(x_test), *y_train.shape[1:]))


def bandpass(signals: np.ndarray, center_hz: float, width_hz: float, order: int,
             sample_rate_hz: float) -> np.ndarray:
    """Zero-phase Butterworth band-pass around `center_hz`, applied to each row of `signals`."""
    from scipy import signal as sps

    low = max(center_hz - width_hz, center_hz / 2)   # keep the band an octave at most below
    high = min(center_hz + width_hz, sample_rate_hz / 2 * 0.999)
    sos = sps.butter(order, [low, high], btype="bandpass", fs=sample_rate_hz, output="sos")
    return sps.sosfiltfilt(sos, signals, axis=-1)


def day_of_year_climatology(maps: np.ndarray, doy: np.ndarray, valid: np.ndarray,
                            query_doy: np.ndarray) -> np.ndarray:
    """Mean map per day of year over `maps` (N, H, W) where `valid`; evaluated at `query_doy` (any shape).

    A day of year with no valid sample takes the nearest day of year that has one (circularly).
    """
    maps, doy, valid = np.asarray(maps, np.float64), np.asarray(doy).ravel(), np.asarray(valid, bool)
    sums = np.zeros((367, *maps.shape[1:]))
    counts = np.zeros((367, *maps.shape[1:]))
    np.add.at(sums, doy, np.where(valid, maps, 0.0))
    np.add.at(counts, doy, valid)
    seen = np.flatnonzero(counts[1:].reshape(366, -1).any(axis=1)) + 1
    if len(seen) == 0:
        raise ValueError("climatology: no valid samples")
    table = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    nearest = {d: seen[np.argmin(np.minimum(abs(seen - d), 366 - abs(seen - d)))] for d in range(1, 367)}
    for d in range(1, 367):  # per pixel: fall back to the nearest day of year with data
        holes = np.isnan(table[d])
        table[d][holes] = np.nan_to_num(table[nearest[d]][holes])
    query = np.asarray(query_doy)
    return table[query.ravel()].reshape(*query.shape, *maps.shape[1:])


def majority_class(y_train: np.ndarray, n_test: int) -> np.ndarray:
    """Predict the most frequent training class for every test sample."""
    return np.full(n_test, np.bincount(np.asarray(y_train)).argmax(), dtype=np.int64)


def band_statistics(x: np.ndarray) -> np.ndarray:
    """(n, bands, h, w) -> (n, 6 * bands): per-band mean, std, min, 5th/95th percentile, max."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), x.shape[1], -1)
    lo, hi = np.percentile(flat, [5, 95], axis=-1)
    return np.concatenate([flat.mean(-1), flat.std(-1), flat.min(-1), lo, hi, flat.max(-1)], axis=1)


def logistic(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float, max_iter: int,
             seed: int) -> np.ndarray:
    """Class-balanced logistic regression on standardised per-patch band statistics -> class ids."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, class_weight="balanced",
                                                               random_state=seed))
    return model.fit(band_statistics(x_train), y_train).predict(band_statistics(x_test))
