"""RangeCheck: rows beyond the training range by more than a margin, per column and split."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from seqpipe.data.series import RangeCheck, training_range

TRAIN = {"a": [0.0, 10.0], "b": [-1.0, 1.0]}


def test_training_range_ignores_nan_and_reads_windows() -> None:
    values = np.array([[[1.0, 5.0], [np.nan, -2.0]], [[3.0, 0.5], [2.0, np.nan]]])   # (rows, window, columns)
    assert training_range(values, ["a", "b"]) == {"a": [1.0, 3.0], "b": [-2.0, 5.0]}


def test_counts_rows_beyond_the_margin_on_either_side() -> None:
    check = RangeCheck(["a", "b"], TRAIN, 0.1)
    # a: 11 is within 10% of the range (10) above 10; 11.5 and -1.5 are beyond. b: 1.3 is beyond 1 + 0.2
    check.add("val", np.array([[11.0, 0.0], [11.5, 0.0], [-1.5, 1.1], [5.0, 1.3]]))
    check.add("test", np.array([[5.0, 0.0], [np.nan, 0.0]]))
    assert check.fractions() == {"a": {"val": 0.5}, "b": {"val": 0.25}}


def test_a_window_row_counts_once_and_blocks_accumulate() -> None:
    check = RangeCheck(["a"], {"a": [0.0, 1.0]}, 0.0)
    check.add("input", np.array([[0.5, 2.0, 3.0], [0.2, 0.3, 0.4]])[..., None])   # 2 windows of 3 steps
    check.add("input", np.array([[0.5, 0.5, -0.5]])[..., None])
    check.add("input", np.zeros((0, 3, 1)))
    assert check.fractions() == {"a": {"input": pytest.approx(2 / 3, abs=1e-6)}}


def test_column_order_follows_columns_not_the_range_dict() -> None:
    check = RangeCheck(["b", "a"], TRAIN, 0.1)
    check.add("test", np.array([[0.0, 50.0]]))   # b = 0 (inside), a = 50 (beyond)
    assert check.fractions() == {"a": {"test": 1.0}}


def test_warn_logs_one_line_per_column_found(caplog: pytest.LogCaptureFixture) -> None:
    check = RangeCheck(["a", "b"], TRAIN, 0.1)
    check.add("val", np.array([[30.0, 0.0], [5.0, 0.0]]))
    check.add("test", np.array([[30.0, 0.0]]))
    with caplog.at_level(logging.WARNING):
        found = check.warn("some.csv", "so what")
    assert found == {"a": {"val": 0.5, "test": 1.0}}
    assert [r.getMessage() for r in caplog.records] == [
        "some.csv: column 'a': 50.0% of val rows, 100.0% of test rows lie more than 10% of the training range "
        "[0, 10] outside it (the furthest 2 ranges beyond); so what"]
    caplog.clear()
    inside = RangeCheck(["a", "b"], TRAIN, 0.1)
    inside.add("val", np.array([[10.5, -1.1]]))
    with caplog.at_level(logging.WARNING):
        assert inside.warn("some.csv", "so what") == {}
    assert caplog.records == []
