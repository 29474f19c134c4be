"""bandwidth's forecaster on real public series bundled with statsmodels, as a new user brings one: a CSV
through the `local` source, the series named as the one feature and target, every other key at its
params.yaml default (window, season, split and batch size `auto`), then the real `dvc repro` in a repo copy.

The rule (issue 26): in the rolling-origin backtest the forecaster is never more than 1% worse than the best
baseline in mean RMSE, and no baseline beats it by more than the backtest's spread. docs/models.md's table
"Real series" lists every series measured, these and the ones where the rule does not hold yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from tests.conftest import copy_repo, run, write_params

KEY = "models.bandwidth"


def macro(column: str) -> pd.DataFrame:
    """A quarterly US macroeconomic series, 1959-2009 (203 rows)."""
    data = sm.datasets.macrodata.load_pandas().data
    quarters = pd.PeriodIndex.from_fields(year=data.year.astype(int), quarter=data.quarter.astype(int), freq="Q")
    return pd.DataFrame({"timestamp": quarters.to_timestamp().strftime("%Y-%m-%d"), column: data[column]})


def yearly(dataset: str, year: str, value: str, name: str) -> pd.DataFrame:
    data = getattr(sm.datasets, dataset).load_pandas().data
    return pd.DataFrame({"timestamp": [f"{int(y)}-01-01" for y in data[year]], name: data[value]})


def co2() -> pd.DataFrame:
    """Weekly Mauna Loa CO2, 1958-2001 (gaps interpolated; 2,284 rows)."""
    frame = sm.datasets.co2.load_pandas().data.interpolate()
    return pd.DataFrame({"timestamp": frame.index.strftime("%Y-%m-%d"), "co2": frame["co2"].to_numpy()})


def elnino(rows: int | None = None) -> pd.DataFrame:
    """Monthly Pacific sea surface temperature, 1950-2010 (732 rows), or its first `rows` months."""
    data = sm.datasets.elnino.load_pandas().data
    values = data.iloc[:, 1:13].to_numpy().ravel()[:rows]
    stamps = pd.date_range(f"{int(data.YEAR.iloc[0])}-01-01", periods=len(values), freq="MS")
    return pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d"), "sst": values})


SERIES: dict[str, tuple[Callable[[], pd.DataFrame], int]] = {   # name: (the CSV frame, the season its cadence gives)
    "realgdp": (lambda: macro("realgdp"), 4),
    "nile": (lambda: yearly("nile", "year", "volume", "volume"), 1),
    "sunspots": (lambda: yearly("sunspots", "YEAR", "SUNACTIVITY", "sunactivity"), 1),
    "co2": (co2, 52),
    "elnino": (elnino, 12),
    "m1": (lambda: macro("m1"), 4),
    "pop": (lambda: macro("pop"), 4),
    "tbilrate": (lambda: macro("tbilrate"), 4),
    **{column: (lambda column=column: macro(column), 4) for column in ("realcons", "realinv", "cpi", "unemp", "infl")},
}
DEFAULT_RUN = ("realgdp", "nile")   # the rest (20-40 s each) with `make test-slow`
# Where the rule does not hold yet (docs/models.md, "Real series"): ETS's smoothed trend, or drift's
# whole-history mean change for cpi, is 3-9% ahead of the forecaster on 29 test quarters. strict: a fix makes
# these fail, to be moved to SERIES proper.
KNOWN_GAPS = ("realcons", "realinv", "cpi", "unemp", "infl")


def marks(name: str) -> list:
    if name in DEFAULT_RUN:
        return []
    if name in KNOWN_GAPS:
        return [pytest.mark.slow,
                pytest.mark.xfail(strict=True, reason="a long-memory baseline wins (docs/models.md)")]
    return [pytest.mark.slow]


def user_overrides(csv: Path, column: str) -> dict:
    """What a user sets to bring a one-column series: the source and the column, nothing else."""
    return {f"{KEY}.download.source": "local", f"{KEY}.download.local.path": str(csv),
            f"{KEY}.preprocess.feature_columns": [column], f"{KEY}.preprocess.target_columns": [column]}


def pipeline_on(frame: pd.DataFrame, tmp_path: Path, name: str) -> tuple[Path, dict]:
    csv = tmp_path / f"{name}.csv"
    frame.to_csv(csv, index=False)
    repo = copy_repo(tmp_path / "repo", user_overrides(csv, frame.columns[1]))
    run(["dvc", "repro", "evaluate-bandwidth"], repo)
    return repo, json.loads((repo / "plots/bandwidth/eval/metrics_detail.json").read_text())


def score_table(name: str, detail: dict) -> str:
    """Backtest mean RMSE and spread of the forecaster, its linear part and every baseline, one row each."""
    rows = {"forecaster": detail["test"], "linear part": detail["network_contribution"]["linear_part"],
            **detail["baselines"]}
    lines = [f"{name} (season {detail['season_steps']}, {detail['n_test_windows']} test steps, "
             f"{detail['backtest']['folds']} origins)", f"{'':16}{'RMSE':>12}{'spread':>10}{'verdict':>9}"]
    verdicts = detail["backtest"]["verdicts"]
    lines += [f"{k:16}{v['backtest']['rmse']:12.4g}{v['backtest']['rmse_spread']:10.3g}"
              f"{verdicts.get(k, {}).get('verdict', ''):>9}" for k, v in rows.items()]
    return "\n".join(lines)


@pytest.mark.parametrize("name", [pytest.param(n, marks=marks(n)) for n in SERIES])
def test_the_forecaster_is_never_more_than_1_percent_behind_the_best_baseline(tmp_path: Path, name: str) -> None:
    make, season = SERIES[name]
    repo, detail = pipeline_on(make(), tmp_path, name)
    table = score_table(name, detail)
    print(table)
    assert detail["season_steps"] == season
    assert json.loads((repo / "data/raw/bandwidth/manifest.json").read_text())["synthetic"] is False
    baselines = detail["baselines"]
    assert set(baselines) == {"persistence", "seasonal_naive", "drift", "ets", "ridge"}
    best = min(b["backtest"]["rmse"] for b in baselines.values())
    assert detail["test"]["backtest"]["rmse"] <= 1.01 * best, table
    assert "loss" not in {v["verdict"] for v in detail["backtest"]["verdicts"].values()}, table
    for level in ("80", "95"):   # both interval levels are reported next to the ridge's, at their nominal level
        for who in ("model", "ridge"):
            report = detail["intervals"][who][level]
            assert report["nominal"] == pytest.approx(int(level) / 100) and 0 <= report["coverage"] <= 1


def test_a_short_monthly_series_runs_with_the_default_params(tmp_path: Path) -> None:
    """110 months: the window (13: a season and a step), split and batch size (8) come from the data."""
    repo, detail = pipeline_on(elnino(110), tmp_path, "elnino_110")
    stats = json.loads((repo / "data/processed/bandwidth/stats.json").read_text())
    assert stats["resolved"] == {"window": 13, "season_steps": 12, "val_fraction": 0.15, "test_fraction": 0.15,
                                 "batch_size": 8, "from_data": ["window", "val_fraction", "test_fraction"]}
    assert stats["window"] == 13 and stats["business_days"] is False
    card = json.loads((repo / "models/bandwidth/model_card.json").read_text())
    assert card["params"]["train"]["batch_size"] == 8
    assert detail["season_steps"] == 12 and detail["n_test_windows"] >= 10


def test_a_number_the_user_writes_wins_over_auto(workdir: Path) -> None:
    csv = workdir / "elnino.csv"
    elnino(200).to_csv(csv, index=False)
    write_params(workdir / "params.yaml", {**user_overrides(csv, "sst"), f"{KEY}.preprocess.window": 6,
                                           f"{KEY}.preprocess.test_fraction": 0.2})
    run(["seqpipe", "download", "bandwidth"], workdir)
    proc = run(["seqpipe", "preprocess", "bandwidth"], workdir)
    stats = json.loads((workdir / "data/processed/bandwidth/stats.json").read_text())
    resolved = stats["resolved"]
    assert stats["window"] == 6 and resolved["window"] == 6 and resolved["test_fraction"] == 0.2
    assert resolved["val_fraction"] == 0.15 and resolved["from_data"] == ["val_fraction"]
    (line,) = [line for line in proc.stderr.splitlines() if "season 12 steps" in line]
    assert "(val_fraction from the data)" in line, line


def test_a_business_day_calendar_is_a_cadence_not_a_weekly_gap(workdir: Path) -> None:
    """A price-like random walk on business days: season 5 (a week of trading days), and predict's next
    timestamp after a Friday is the Monday."""
    stamps = pd.bdate_range("2020-01-01", periods=400)
    price = 100 + np.cumsum(np.random.default_rng(0).normal(0, 1, len(stamps)))
    csv = workdir / "prices.csv"
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d"), "close": price}).to_csv(csv, index=False)
    write_params(workdir / "params.yaml", {**user_overrides(csv, "close"), f"{KEY}.train.epochs": 1,
                                           f"{KEY}.train.num_threads": 1})
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "bandwidth"], workdir)
    stats = json.loads((workdir / "data/processed/bandwidth/stats.json").read_text())
    assert stats["business_days"] is True and stats["season_steps"] == 5 and stats["window"] == 8
    friday = workdir / "to_friday.csv"
    pd.read_csv(csv).iloc[:8].to_csv(friday, index=False)      # 2020-01-01 (a Wednesday) .. 2020-01-10, a Friday
    run(["seqpipe", "predict", "bandwidth", "--input", str(friday), "--output", "next.csv"], workdir)
    assert pd.read_csv(workdir / "next.csv")["timestamp"].tolist() == ["2020-01-13T00:00:00Z"]   # the Monday
