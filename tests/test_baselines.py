"""seqpipe.baselines: the forecasting baselines (seasonal naive, drift, ETS) against their definitions and
against statsmodels, and the crop_ndvi drift's pixel history."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from seqpipe import baselines
from seqpipe.pipelines.crop_ndvi.evaluate import pixel_history


@pytest.mark.parametrize(("cadence_s", "season"), [
    (60, 1440), (300, 288), (3600, 24), (86400, 7), (7 * 86400, 52), (30.44 * 86400, 12), (91 * 86400, 4),
    (365 * 86400, 1), (366 * 86400, 1), (10 * 365 * 86400, 1), (5 * 86400, 1)])
def test_season_from_cadence(cadence_s: float, season: int) -> None:
    assert baselines.season_from_cadence(cadence_s) == season


def test_season_from_cadence_refuses_a_non_positive_cadence() -> None:
    with pytest.raises(ValueError, match="cadence"):
        baselines.season_from_cadence(0)


def test_seasonal_naive_repeats_the_value_one_season_back() -> None:
    series = np.arange(20.0).reshape(10, 2)
    at = np.array([4, 9])
    np.testing.assert_array_equal(baselines.seasonal_naive(series, at, 3), series[[1, 6]])
    np.testing.assert_array_equal(baselines.seasonal_naive(series, 5, 1), series[4])   # season 1: last value
    with pytest.raises(ValueError, match="season 5"):
        baselines.seasonal_naive(series, at, 5)


def test_drift_continues_a_straight_line_exactly_and_is_persistence_without_history() -> None:
    line = 3.0 + 0.5 * np.arange(30)
    at = np.arange(5, 30)
    np.testing.assert_allclose(baselines.drift(line[at - 1], line[0], at - 1), line[at])
    assert baselines.drift(np.array([2.0]), np.array([7.0]), 0)[0] == 2.0


def test_holt_damped_is_statsmodels_ets_with_the_same_parameters_and_initial_states() -> None:
    rng = np.random.default_rng(3)
    windows = np.cumsum(rng.normal(size=(4, 12)), axis=1)
    ours = baselines.holt_damped(windows, 0.4, 0.15, 0.9)
    for row, value in zip(windows, ours):
        model = ETSModel(row, error="add", trend="add", damped_trend=True, initialization_method="known",
                         initial_level=row[0], initial_trend=row[1] - row[0])
        assert value == pytest.approx(model.smooth([0.4, 0.15, 0.9]).forecast(1)[0], rel=1e-10)


def test_fit_holt_damped_recovers_the_parameters_of_simulated_series() -> None:
    rng = np.random.default_rng(7)
    alpha, beta, phi, n, steps = 0.6, 0.2, 0.9, 3000, 12
    level, trend = rng.normal(size=n), rng.normal(scale=0.1, size=n)
    values = np.empty((n, steps))
    for k in range(steps):
        error = rng.normal(scale=0.05, size=n)
        values[:, k] = level + phi * trend + error
        level, trend = level + phi * trend + alpha * error, phi * trend + beta * error
    fitted = baselines.fit_holt_damped(values[:, :-1], values[:, -1])
    assert fitted["smoothing_level"] == pytest.approx(alpha, abs=0.15)
    assert fitted["damping_trend"] == pytest.approx(phi, abs=0.08)
    naive = np.sqrt(np.mean((values[:, -2] - values[:, -1]) ** 2))
    ets = np.sqrt(np.mean((baselines.holt_damped(values[:, :-1], *fitted.values()) - values[:, -1]) ** 2))
    assert ets < naive


def test_ets_forecasts_after_the_fit_use_only_the_past_and_the_fitted_parameters() -> None:
    rng = np.random.default_rng(11)
    series = np.cumsum(0.3 + rng.normal(size=400))
    forecast, params = baselines.ets(series, slice(100, 300))
    assert len(forecast) == 300 and set(params) >= {"smoothing_level", "smoothing_trend", "damping_trend"}
    fitted = ETSModel(series[100:300], error="add", trend="add", damped_trend=True).fit(disp=False)
    np.testing.assert_allclose(forecast[:200], fitted.fittedvalues, rtol=1e-6)   # the fit's own one-step forecasts
    changed = series.copy()
    changed[350:] += 100.0                                   # later values cannot move earlier forecasts
    np.testing.assert_array_equal(baselines.ets(changed, slice(100, 300))[0][:251], forecast[:251])
    assert np.mean(np.abs(forecast[200:] - series[300:])) < np.mean(np.abs(series[299:-1] - series[300:])) * 1.2


def test_pixel_history_starts_at_each_pixels_earliest_test_window() -> None:
    # rows: pixel (0, 0) with windows targeting steps 5 and 9, pixel (1, 2) with one targeting step 4
    meta = np.array([[0, 0, 9], [1, 2, 4], [0, 0, 5]])
    x = np.array([[6.0, 7.0, 8.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]])
    first, steps = pixel_history(meta, x)
    np.testing.assert_array_equal(first, [2.0, 1.0, 2.0])   # the value at step 2, at step 1, at step 2
    np.testing.assert_array_equal(steps, [6, 2, 2])         # from there to the window's last input (8, 3, 4)
    np.testing.assert_allclose(baselines.drift(x[:, -1], first, steps), [9.0, 4.0, 5.0])


def test_a_season_without_enough_history_is_one_clear_error_naming_the_key() -> None:
    from seqpipe.errors import SeqpipeError
    from seqpipe.pipelines.bandwidth import evaluate as bandwidth
    from seqpipe.pipelines.crop_ndvi import evaluate as crop_ndvi

    def bandwidth_params(season: int | str) -> bandwidth.EvaluateParams:
        return bandwidth.EvaluateParams(batch_size=8, mape_floor_fraction=0.1, ridge_alpha=1.0, target_correlation=0.9,
                                        target_mape=5.0, plot_steps=10, season_steps=season, ets_fit_steps=0,
                                        backtest_folds=5)

    assert bandwidth.season_steps(bandwidth_params("auto"), {"season_steps": 1440}, 2000) == 1440
    assert bandwidth.season_steps(bandwidth_params(24), {"season_steps": 1440}, 2000) == 24
    with pytest.raises(SeqpipeError, match=r"^models.bandwidth.evaluate.season_steps auto \(from the cadence\): a "
                                           r"season of 1440 steps needs more than the 400 training rows"):
        bandwidth.season_steps(bandwidth_params("auto"), {"season_steps": 1440}, 400)
    crop = crop_ndvi.EvaluateParams(batch_size=8, min_accuracy=0.5, fail_below_min_accuracy=False, trend_steps=3,
                                    ridge_alpha=1.0, sample_pixels=2, season_steps=12)
    assert crop_ndvi.season_steps(crop_ndvi.EvaluateParams(**{**crop.__dict__, "season_steps": 0}),
                                  {"grid_days": 5, "window": 10}) == 1
    with pytest.raises(SeqpipeError, match="^models.crop_ndvi.evaluate.season_steps: a season of 12 steps is longer "
                                           "than the 10-step window"):
        crop_ndvi.season_steps(crop, {"grid_days": 5, "window": 10})


def _rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, 6, 2) with a large offset (centring matters) and two targets linear in them plus noise."""
    rng = np.random.default_rng(seed)
    x = 1e3 + rng.normal(size=(n, 6, 2))
    y = x.reshape(n, -1) @ rng.normal(size=(12, 2)) + rng.normal(size=(n, 2))
    return x.astype(np.float32), y.astype(np.float32)


def test_moments_read_in_chunks_fit_what_linear_fits_on_every_expanding_window() -> None:
    x, y = _rows(500)
    ends = [40, 41, 128, 250, 499]   # 128: at a chunk boundary
    chunks = ((x[s:s + 64], y[s:s + 64]) for s in range(0, len(x), 64))
    moments = baselines.expanding_moments(chunks, ends)
    assert [m.n for m in moments] == ends
    for end, m in zip(ends, moments, strict=True):
        whole = baselines.linear(x[:end], y[:end], x[450:], alpha=1.0)
        chunked = baselines.linear_apply(m.linear(1.0), x[450:], y[:1])
        assert chunked.dtype == whole.dtype == np.float32 and chunked.shape == whole.shape
        np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-4)
        x64 = x[:end].astype(np.float64).reshape(end, -1)
        mean_x, xx, _, _ = m.centred()   # against the two-pass sums of the rows themselves
        np.testing.assert_allclose(xx, (x64 - x64.mean(0)).T @ (x64 - x64.mean(0)), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(mean_x, x64.mean(0), rtol=1e-12)


def test_expanding_moments_need_ascending_ends_within_the_rows() -> None:
    x, y = _rows(10)
    with pytest.raises(ValueError, match="ascending"):
        baselines.expanding_moments([(x, y)], [5, 3])
    with pytest.raises(ValueError, match="fewer than the last end 11"):
        baselines.expanding_moments([(x, y)], [11])


def test_climatology_added_in_chunks_is_the_whole_one_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    maps, doy = rng.random((90, 4, 5)), rng.integers(1, 367, 90)
    valid = rng.random((90, 4, 5)) > 0.3
    query = rng.integers(1, 367, (7, 3))
    chunked = baselines.Climatology((4, 5))
    for s in range(0, 90, 16):
        chunked.add(maps[s:s + 16], doy[s:s + 16], valid[s:s + 16])
    assert np.array_equal(chunked.at(query), baselines.day_of_year_climatology(maps, doy, valid, query))


def test_band_statistics_read_in_chunks_equal_the_whole_split_read_at_once() -> None:
    x = np.random.default_rng(3).normal(size=(23, 2, 6, 6)).astype(np.float32)
    whole = baselines.band_statistics(x, chunk=len(x))
    assert whole.shape == (23, 12)
    for chunk in (1, 5, 22):
        assert baselines.band_statistics(x, chunk).tobytes() == whole.tobytes()
    assert baselines.band_statistics(x[:0]).shape == (0, 12)
