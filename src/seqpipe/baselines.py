"""Baselines every metric is reported next to: persistence, least-squares linear, band-pass."""

from __future__ import annotations

import numpy as np

# scipy and scikit-learn are imported inside the functions: only evaluate needs them, and every
# other stage would pay their import time.


def persistence(last_values: np.ndarray) -> np.ndarray:
    """Forecast = the last observed value (the windows' final step)."""
    return np.asarray(last_values, dtype=np.float64)


def linear(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression from flattened windows to flattened targets (a least-squares linear filter)."""
    from sklearn.linear_model import Ridge

    def flat(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), -1)
    model = Ridge(alpha=alpha).fit(flat(x_train), flat(y_train))
    return model.predict(flat(x_test)).reshape((len(x_test), *y_train.shape[1:]))


def bandpass(signals: np.ndarray, center_hz: float, width_hz: float, order: int,
             sample_rate_hz: float) -> np.ndarray:
    """Zero-phase Butterworth band-pass around `center_hz`, applied to each row of `signals`."""
    from scipy import signal as sps

    low = max(center_hz - width_hz, center_hz / 2)   # keep the band an octave at most below
    high = min(center_hz + width_hz, sample_rate_hz / 2 * 0.999)
    sos = sps.butter(order, [low, high], btype="bandpass", fs=sample_rate_hz, output="sos")
    return sps.sosfiltfilt(sos, signals, axis=-1)
