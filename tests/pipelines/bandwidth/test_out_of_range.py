"""bandwidth on a trending series: preprocess and predict warn where values leave the training range."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run, tiny_overrides, write_params
from tests.pipelines.conftest import assert_one_error_line

ROWS = 300


def write_trend(path: Path, rows: int = ROWS, start: float = 0.0) -> Path:
    """A CSV with `level` (a noisy upward trend, so val/test lie above the training rows) and `wiggle`
    (a stationary oscillation that stays inside its training range)."""
    rng = np.random.default_rng(3)
    t = np.arange(rows)
    frame = pd.DataFrame({
        "timestamp": (pd.Timestamp("2025-11-03") + pd.to_timedelta(t, unit="min")).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "level": start + 0.5 * t + rng.normal(0, 0.3, rows),
        "wiggle": np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.05, rows)})
    frame.to_csv(path, index=False, float_format="%.5f")
    return path


def trend_params(work: Path, csv: Path, **extra: object) -> dict:
    overrides = {**tiny_overrides("bandwidth"), "models.bandwidth.download.source": "local",
                 "models.bandwidth.download.local.path": str(csv),
                 "models.bandwidth.preprocess.feature_columns": ["level", "wiggle"],
                 "models.bandwidth.preprocess.target_columns": ["level"], **extra}
    write_params(work / "params.yaml", overrides)
    return overrides


def range_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " WARNING " in line and "training range" in line]


def test_preprocess_warns_and_records_values_beyond_the_training_range(workdir: Path) -> None:
    csv = write_trend(workdir / "trend.csv")
    trend_params(workdir, csv)
    run(["seqpipe", "download", "bandwidth"], workdir)
    proc = run(["seqpipe", "preprocess", "bandwidth"], workdir)
    stats = json.loads((workdir / "data/processed/bandwidth/stats.json").read_text())
    # independently: the rows of each split's targets, against train rows' range plus 10% of it
    level = pd.read_csv(csv)["level"].to_numpy()
    window, (val_start, val_stop), (test_start, test_stop) = (stats["window"], stats["split_rows"]["val"],
                                                              stats["split_rows"]["test"])
    train = level[:val_start + window]
    limit = train.max() + 0.1 * (train.max() - train.min())
    expected = {split: float(np.mean(level[a + window:b + window] > limit))
                for split, (a, b) in (("val", (val_start, val_stop)), ("test", (test_start, test_stop)))}
    assert expected["test"] == 1.0 and 0 < expected["val"] < 1
    assert stats["out_of_range"] == {"level": pytest.approx(expected, abs=1e-6)}
    assert stats["train_range"]["level"] == pytest.approx([train.min(), train.max()])
    assert stats["range_margin"] == 0.1
    (line,) = range_warnings(proc.stderr)
    assert "data/raw/bandwidth/bandwidth.csv: column 'level': " in line
    assert f"{expected['val']:.1%} of val rows, 100.0% of test rows" in line and "clips that step's level" in line

    write_params(workdir / "params.yaml", {**trend_params(workdir, csv), "models.bandwidth.preprocess.range_margin": 5.0})
    proc = run(["seqpipe", "preprocess", "bandwidth"], workdir)
    assert range_warnings(proc.stderr) == []
    assert json.loads((workdir / "data/processed/bandwidth/stats.json").read_text())["out_of_range"] == {}


def test_stationary_default_data_has_nothing_out_of_range(workdir: Path) -> None:
    write_params(workdir / "params.yaml", {})   # params.yaml's default data (tiny's 400 rows cover part of a day)
    run(["seqpipe", "download", "bandwidth"], workdir)
    proc = run(["seqpipe", "preprocess", "bandwidth"], workdir)
    assert range_warnings(proc.stderr) == []
    assert json.loads((workdir / "data/processed/bandwidth/stats.json").read_text())["out_of_range"] == {}


def test_a_negative_range_margin_is_one_error_naming_the_key(workdir: Path) -> None:
    write_params(workdir / "params.yaml", {**tiny_overrides("bandwidth"),
                                           "models.bandwidth.preprocess.range_margin": -0.1})
    proc = run(["seqpipe", "preprocess", "bandwidth"], workdir, check=False)
    assert proc.returncode == 1
    assert_one_error_line(proc.stderr, "seqpipe: error: params.yaml: models.bandwidth.preprocess.range_margin: "
                                       "must be >= 0 (a share of the training range), got -0.1")


def test_predict_warns_on_inputs_beyond_the_training_range(workdir: Path) -> None:
    csv = write_trend(workdir / "trend.csv")
    trend_params(workdir, csv)
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "bandwidth"], workdir)
    inside = workdir / "inside.csv"
    pd.read_csv(csv).head(100).to_csv(inside, index=False)          # training rows only
    proc = run(["seqpipe", "predict", "bandwidth", "--input", str(inside), "--output", "a.csv"], workdir)
    assert range_warnings(proc.stderr) == []

    later = write_trend(workdir / "later.csv", rows=50, start=1000.0)   # far above anything trained on
    proc = run(["seqpipe", "predict", "bandwidth", "--input", str(later), "--output", "b.csv"], workdir)
    (line,) = range_warnings(proc.stderr)
    assert f"{later}: column 'level': 100.0% of input rows lie more than 10% of the training range" in line
    assert "clips that step's level to the training range" in line
    forecast = pd.read_csv(workdir / "b.csv")["level"].to_numpy()
    assert len(forecast) == 50 - 8 + 1 and np.isfinite(forecast).all()
    last = pd.read_csv(later)["level"].to_numpy()[7:]   # each window's last level, near 1000 (trained: 0..150)
    assert np.abs(forecast - last).max() < 5.0           # it follows the level: the window is read relative to it
