"""The least-squares linear baseline (numpy normal equations) against scikit-learn's Ridge."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from seqpipe import baselines


@pytest.mark.parametrize("dtype, alpha", [(np.float32, 1.0), (np.float64, 0.01), (np.float32, 50.0)])
def test_linear_matches_scikit_learn_ridge(dtype: type, alpha: float) -> None:
    """Windows (n, steps, features) -> targets (n, targets), offsets and scales far from 0 and 1 as real
    series have: the same forecasts as Ridge(alpha) with its intercept, in the input's dtype and shape."""
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(500, 12, 3)) * [1.0, 40.0, 0.01] + [5.0, 300.0, -2.0]).astype(dtype)
    w = rng.normal(size=(36, 2))
    y = (x.reshape(500, -1) @ w + rng.normal(scale=0.1, size=(500, 2)) + 7.0).astype(dtype)
    x_test = x[-50:] + dtype(0.5)
    before = x.copy()
    ours = baselines.linear(x[:450], y[:450], x_test, alpha)
    np.testing.assert_array_equal(x, before)  # the caller's arrays are left alone
    reference = Ridge(alpha=alpha).fit(x[:450].reshape(450, -1).astype(np.float64), y[:450].astype(np.float64))
    expected = reference.predict(x_test.reshape(50, -1).astype(np.float64))
    assert ours.shape == (50, 2) and ours.dtype == dtype
    np.testing.assert_allclose(ours, expected, rtol=1e-5 if dtype == np.float32 else 1e-9,
                               atol=1e-4 * np.abs(expected).max())
