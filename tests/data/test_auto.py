"""The rules `auto` params resolve by (seqpipe.data.series): cadence, window, holdout share, batch size."""

from __future__ import annotations

import pandas as pd
import pytest

from seqpipe.data.series import auto_batch_size, auto_holdout_fraction, auto_window, detect_cadence

DAY = 86400.0


@pytest.mark.parametrize("stamps, cadence, business", [
    (pd.date_range("2025-01-01", periods=100, freq="min"), 60.0, False),
    (pd.date_range("1949-01-01", periods=144, freq="MS"), 31 * DAY, False),       # the median month
    (pd.date_range("2020-01-01", periods=60, freq="D"), DAY, False),               # weekends present
    (pd.bdate_range("2020-01-01", periods=300), DAY, True),                        # weekends absent
    (pd.bdate_range("2020-01-06", periods=5), DAY, False),                         # one week: no weekend seen
])
def test_cadence_and_business_days(stamps: pd.DatetimeIndex, cadence: float, business: bool) -> None:
    assert detect_cadence(stamps.to_numpy()) == (cadence, business)


def test_a_business_calendar_with_a_gap_is_still_one_but_a_daily_one_with_weekend_rows_is_not() -> None:
    days = pd.bdate_range("2020-01-01", periods=300)
    holidays = days.delete([10, 11, 150])                    # a holiday now and then: 2- and 4-day steps
    assert detect_cadence(holidays.to_numpy()) == (DAY, True)
    with_saturday = days.append(pd.DatetimeIndex(["2021-03-06"])).sort_values()
    assert detect_cadence(with_saturday.to_numpy())[1] is False


@pytest.mark.parametrize("season, rows, window", [
    (12, 144, 13),      # monthly: a season and a step
    (4, 203, 8),        # quarterly: at least 8
    (1, 100, 8),        # yearly
    (52, 2284, 53),     # weekly
    (1440, 15000, 20),  # minutes: a day does not fit in 64 rows
    (12, 40, 8),        # at most a fifth of the rows
    (12, 20, 4),
])
def test_window(season: int, rows: int, window: int) -> None:
    assert auto_window(season, rows) == window


def test_holdout_share_holds_a_season_and_ten_windows_up_to_30_percent() -> None:
    assert auto_holdout_fraction(1440, 14980) == 0.15
    assert auto_holdout_fraction(12, 50) == 0.24                    # a season of 12 in 50 windows
    assert auto_holdout_fraction(1, 40) == 0.25                     # ten windows of 40
    assert auto_holdout_fraction(1, 20) == auto_holdout_fraction(1, -5) == 0.3
    for n in range(34, 200):                                        # from 34 windows on: ten each, as promised
        assert round(n * auto_holdout_fraction(1, n)) >= 10


@pytest.mark.parametrize("n_train, batch", [(10486, 128), (1560, 64), (140, 8), (66, 8), (5, 5), (300, 16)])
def test_batch_size(n_train: int, batch: int) -> None:
    assert auto_batch_size(n_train) == batch
