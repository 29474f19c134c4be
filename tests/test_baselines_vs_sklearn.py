"""The numpy baselines and classification scores against scikit-learn (which evaluate no longer imports)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from seqpipe import baselines, metrics


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_matches_scikit_learn(seed: int) -> None:
    """The numpy Newton solver against LogisticRegression(class_weight="balanced") on the same features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    sizes = (90, 40, 15)  # unbalanced, as the ice classes are
    x = np.concatenate([rng.normal(loc=c * 0.6, scale=1.0, size=(n, 2, 5, 5)) for c, n in enumerate(sizes)])
    y = np.repeat(np.arange(len(sizes)), sizes)
    x_test = rng.normal(loc=0.6, scale=1.2, size=(300, 2, 5, 5))
    ours = baselines.logistic(x, y, x_test, c=0.5, max_iter=100)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000,
                                                             tol=1e-10)).fit(baselines.band_statistics(x), y)
    theirs = ref.predict(baselines.band_statistics(x_test))
    assert np.mean(ours == theirs) >= 0.99
    assert set(np.unique(ours)) <= set(np.unique(y)) and ours.dtype == y.dtype


def test_classification_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 3, 200))  # class 3 rarely predicted
    y_pred[y_pred == 3] = 2  # never predicted: precision undefined, reported as 0
    ours = metrics.classification_metrics(y_true, y_pred, ["a", "b", "c", "d"])
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2, 3], zero_division=0)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-15)
    assert ours["macro_f1"] == pytest.approx(float(np.mean(f)), abs=1e-12)
    for i, name in enumerate("abcd"):
        got = ours["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    assert ours["per_class"]["d"]["precision"] == 0.0
