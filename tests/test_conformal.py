"""Split-conformal half-widths: the rank rule, too few points, and coverage on exchangeable errors."""

from __future__ import annotations

import numpy as np

from seqpipe.conformal import conformal_halfwidths, coverage, interval_bounds


def test_the_halfwidth_is_the_ceil_n_plus_1_q_th_smallest_error() -> None:
    errors = np.arange(1.0, 20.0)[:, None]          # 19 calibration points: 1, 2, ..., 19
    np.testing.assert_array_equal(conformal_halfwidths(errors, [0.5, 0.8, 0.95]), [[10.0], [16.0], [19.0]])
    # 18 points cannot support 95%: ceil(19 * 0.95) = 19 > 18, so the interval is unbounded
    assert np.isinf(conformal_halfwidths(errors[:18], [0.95])).all()


def test_coverage_on_fresh_exchangeable_errors_is_near_the_nominal_level() -> None:
    rng = np.random.default_rng(0)
    calibration, test = rng.standard_t(4, size=(2000, 2)), rng.standard_t(4, size=(20000, 2))
    half = conformal_halfwidths(np.abs(calibration), [0.8, 0.95])
    point = np.zeros_like(test)
    report = coverage(test, interval_bounds(point, half), [0.8, 0.95])
    assert set(report) == {"80", "95"}
    for key, level in (("80", 0.8), ("95", 0.95)):
        assert report[key]["nominal"] == level
        assert abs(report[key]["coverage"] - level) < 0.02, report
        assert report[key]["mean_width"] > 0
