"""bandwidth: strict CSV reading, the local source, predict and ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqpipe.data.tables import read_timeseries_csv
from seqpipe.errors import SeqpipeError
from seqpipe.pipelines.bandwidth.download import BandwidthSyntheticParams, write_synthetic
from tests.conftest import run, tiny_overrides, write_params
from tests.pipelines.conftest import assert_one_error_line

COLUMNS = ["throughput_mbps", "rtt_ms", "packet_loss", "jitter_ms"]


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    params = BandwidthSyntheticParams(n_rows=300, cadence_s=60, start="2025-11-03T00:00:00",
                                      congestion_per_day=6.0, noise_scale=0.01, noise_dof=3.0)
    write_synthetic(params, seed=1, out_dir=tmp_path)
    return tmp_path / "bandwidth.csv"


def edit(path: Path, change) -> Path:
    frame = pd.read_csv(path, dtype=str)
    frame = change(frame)
    out = path.with_name("bad.csv")
    frame.to_csv(out, index=False)
    return out


def set_cell(column: str, row: int, value: str):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame
    return change


BAD_CSVS = {
    "missing target column": (lambda f: f.drop(columns=["rtt_ms"]), "missing column(s) rtt_ms"),
    "unparseable timestamp": (set_cell("timestamp", 7, "yesterday"), "unparseable timestamp 'yesterday'"),
    "duplicated timestamp": (set_cell("timestamp", 5, "2025-11-03T00:04:00Z"), "duplicated at data row 6"),
    "unsorted timestamps": (set_cell("timestamp", 5, "2025-11-03T00:01:30Z"), "out of order at data row 6"),
    "NaN value": (set_cell("jitter_ms", 9, "nan"), "column 'jitter_ms' has 1 NaN/inf value(s), first at data row 10"),
    "inf value": (set_cell("rtt_ms", 3, "inf"), "column 'rtt_ms' has 1 NaN/inf"),
    "non-numeric value": (set_cell("packet_loss", 4, "lots"), "non-numeric value 'lots' in column 'packet_loss'"),
    "too few rows": (lambda f: f.head(20), "20 data rows, need at least 100"),
    "header only": (lambda f: f.head(0), "0 data rows"),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_bad_csv_is_one_clear_error(good_csv: Path, case: str) -> None:
    change, message = BAD_CSVS[case]
    bad = edit(good_csv, change)
    with pytest.raises(SeqpipeError) as info:
        read_timeseries_csv(bad, "timestamp", COLUMNS, min_rows=100)
    assert str(info.value).startswith(f"{bad}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_csv(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SeqpipeError, match="empty file"):
        read_timeseries_csv(empty, "timestamp", COLUMNS, min_rows=10)


def test_local_source_runs_through_the_cli_and_refuses_bad_csv(tmp_path: Path, good_csv: Path) -> None:
    bad = edit(good_csv, set_cell("rtt_ms", 3, "inf"))
    overrides = {**tiny_overrides("bandwidth"), "models.bandwidth.download.source": "local",
                 "models.bandwidth.download.local.path": str(bad)}
    work = tmp_path / "work"
    work.mkdir()
    write_params(work / "params.yaml", overrides)
    run(["seqpipe", "download", "bandwidth"], work)
    manifest = json.loads((work / "data/raw/bandwidth/manifest.json").read_text())
    assert manifest["source"] == "local" and manifest["synthetic"] is False
    proc = run(["seqpipe", "preprocess", "bandwidth"], work, check=False)
    assert proc.returncode == 1
    assert_one_error_line(proc.stderr, "seqpipe: error: data/raw/bandwidth/bandwidth.csv: column 'rtt_ms' has "
                                       "1 NaN/inf value(s), first at data row 4")
    assert not (work / "data/processed/bandwidth").exists()
    leftovers = [p.name for p in (work / "data/processed").iterdir()] if (work / "data/processed").exists() else []
    assert leftovers == []

    write_params(work / "params.yaml", {**overrides, "models.bandwidth.download.local.path": str(good_csv),
                                        "models.bandwidth.train.require_real_data": True})
    run(["seqpipe", "download", "bandwidth"], work)
    run(["seqpipe", "preprocess", "bandwidth"], work)
    run(["seqpipe", "train", "bandwidth"], work)  # real (non-synthetic) data passes require_real_data


def test_require_real_data_refuses_synthetic(workdir: Path) -> None:
    write_params(workdir / "params.yaml", {**tiny_overrides("bandwidth"),
                                           "models.bandwidth.train.require_real_data": True})
    run(["seqpipe", "download", "bandwidth"], workdir)
    run(["seqpipe", "preprocess", "bandwidth"], workdir)
    proc = run(["seqpipe", "train", "bandwidth"], workdir, check=False)
    assert proc.returncode == 1 and "data is synthetic" in proc.stderr
    assert not (workdir / "models/bandwidth/model.pt").exists()


def test_predict_and_export(workdir: Path, good_csv: Path) -> None:
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "bandwidth"], workdir)
    out = workdir / "forecast.csv"
    run(["seqpipe", "predict", "bandwidth", "--input", str(good_csv), "--output", str(out)], workdir)
    forecast = pd.read_csv(out)
    window = 8  # tests/tiny_params.yaml
    bounds = [f"{c}_{side}_{level}" for c in COLUMNS for level in (80, 95) for side in ("lower", "upper")]
    assert sorted(forecast.columns) == sorted(["timestamp", *COLUMNS, *bounds])
    assert len(forecast) == 300 - window + 1
    for c in COLUMNS:   # each interval holds the forecast, the 95% one the 80% one
        assert (forecast[f"{c}_lower_95"] <= forecast[f"{c}_lower_80"]).all()
        assert (forecast[f"{c}_lower_80"] <= forecast[c]).all() and (forecast[c] <= forecast[f"{c}_upper_80"]).all()
        assert (forecast[f"{c}_upper_80"] <= forecast[f"{c}_upper_95"]).all()
    assert forecast["timestamp"].iloc[0] == "2025-11-03T00:08:00Z"  # the step after the first window
    assert np.isfinite(forecast[COLUMNS].to_numpy()).all()

    proc = run(["seqpipe", "export", "bandwidth"], workdir)
    assert "max abs diff" in proc.stdout
    diff = float(proc.stdout.split("max abs diff ")[1].split()[0])
    assert diff < 1e-4
    assert (workdir / "models/bandwidth/model.onnx").stat().st_size > 1000

    proc = run(["seqpipe", "predict", "bandwidth", "--input", str(workdir / "nope.csv"), "--output", "x.csv"],
               workdir, check=False)
    assert proc.returncode == 1 and "nope.csv: not found" in proc.stderr
