"""bandwidth's forecaster on real public series bundled with statsmodels (quarterly US real GDP, trending;
yearly sunspots, cyclic; yearly Nile flow, a level shift): the real `dvc repro` in a repo copy, with the
series as the `local` source's one feature and target, must beat persistence and the seasonal naive
forecast on RMSE over the chronological test split.

The settings follow rules, not these series: the season comes from the data's cadence (evaluate
season_steps 0), the window from the series length, and the network reads each window relative to its
last value (model.normalisation: difference), so a trending series that leaves the training range is
forecast as a change, not extrapolated in absolute units.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from tests.conftest import copy_repo, run

KEY = "models.bandwidth"


def quarterly_gdp() -> pd.DataFrame:
    data = sm.datasets.macrodata.load_pandas().data
    quarters = pd.PeriodIndex.from_fields(year=data.year.astype(int), quarter=data.quarter.astype(int), freq="Q")
    return pd.DataFrame({"timestamp": quarters.to_timestamp().strftime("%Y-%m-%d"), "realgdp": data.realgdp})


def yearly(dataset: str, year: str, value: str, name: str) -> pd.DataFrame:
    data = getattr(sm.datasets, dataset).load_pandas().data
    return pd.DataFrame({"timestamp": [f"{int(y)}-01-01" for y in data[year]], name: data[value]})


SERIES = {  # name: (the series as a CSV frame, the season that its cadence gives)
    "realgdp": (quarterly_gdp, 4),
    "sunspots": (lambda: yearly("sunspots", "YEAR", "SUNACTIVITY", "sunactivity"), 1),
    "nile": (lambda: yearly("nile", "year", "volume", "volume"), 1),
}


def real_series_overrides(csv: Path, frame: pd.DataFrame) -> dict:
    """Params for one univariate series: the rules of this module's docstring, a tiny network, few epochs."""
    column = frame.columns[1]
    return {f"{KEY}.download.source": "local", f"{KEY}.download.local.path": str(csv),
            f"{KEY}.preprocess.timestamp_column": "timestamp",
            f"{KEY}.preprocess.feature_columns": [column], f"{KEY}.preprocess.target_columns": [column],
            f"{KEY}.preprocess.window": int(np.clip(len(frame) // 20, 4, 16)),
            f"{KEY}.model.hidden_size": 16, f"{KEY}.model.num_layers": 1,
            f"{KEY}.model.normalisation": "difference",
            f"{KEY}.train.epochs": 30, f"{KEY}.train.batch_size": 16, f"{KEY}.train.lr": 0.01,
            f"{KEY}.train.num_threads": 1,
            f"{KEY}.evaluate.season_steps": 0, f"{KEY}.evaluate.ets_fit_steps": 0,
            f"{KEY}.evaluate.plot_steps": 10}


def score_table(name: str, detail: dict) -> str:
    """RMSE, MAE and MASE of the LSTM and every baseline, one row each."""
    rows = {"LSTM": detail["test"]["mean"], **{b: s["mean"] for b, s in detail["baselines"].items()}}
    lines = [f"{name} (season {detail['season_steps']}, {detail['n_test_windows']} test steps)",
             f"{'':16}{'RMSE':>12}{'MAE':>12}{'MASE':>8}"]
    lines += [f"{k:16}{v['rmse']:12.4g}{v['mae']:12.4g}{v['mase']:8.3f}" for k, v in rows.items()]
    return "\n".join(lines)


# realgdp (trending, the hard case) runs by default; the other two with `make test-slow` (~40 s each).
@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n == "realgdp" else [pytest.mark.slow]) for n in SERIES])
def test_the_lstm_beats_the_naive_forecasts_on_a_real_series(tmp_path: Path, name: str) -> None:
    make, season = SERIES[name]
    frame = make()
    csv = tmp_path / f"{name}.csv"
    frame.to_csv(csv, index=False)
    repo = copy_repo(tmp_path / "repo", real_series_overrides(csv, frame))
    run(["dvc", "repro", "evaluate-bandwidth"], repo)
    detail = json.loads((repo / "plots/bandwidth/eval/metrics_detail.json").read_text())
    table = score_table(name, detail)
    print(table)
    assert detail["season_steps"] == season
    manifest = json.loads((repo / "data/raw/bandwidth/manifest.json").read_text())
    assert manifest["synthetic"] is False
    lstm, baselines = detail["test"]["mean"]["rmse"], detail["baselines"]
    assert set(baselines) == {"persistence", "seasonal_naive", "drift", "ets", "ridge"}
    assert lstm < baselines["persistence"]["mean"]["rmse"], table
    assert lstm < baselines["seasonal_naive"]["mean"]["rmse"], table
