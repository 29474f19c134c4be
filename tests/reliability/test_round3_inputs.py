"""Round 3 of hostile inputs (issue 29), the inputs' own classes: the time axis of every time-series
input (cadence, gaps, fill caps), a user's scenes.json, and the Python API's checks before any cast.

The CLI runs on the tiny trained copy of tests/api/conftest.py (shared with the API tests), or, for
preprocess, in a work folder holding a copy of its raw data; the API is `seqpipe.load(...).predict`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

import seqpipe
from seqpipe.errors import SeqpipeError
from seqpipe.stages.predict import PredictInputError
from tests.api.conftest import trained_overrides, trained_repo  # noqa: F401  (the session's trained copy)
from tests.conftest import run, write_params

STAMP = "%Y-%m-%dT%H:%M:%SZ"


def refused(cmd: list[str], cwd: Path, *expected: str) -> str:
    """Run the CLI: a non-zero exit, one `seqpipe: error:` line holding every `expected` text, no traceback."""
    proc = run(["seqpipe", *cmd], cwd, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert lines and lines[-1].startswith("seqpipe: error: "), proc.stderr
    assert [line for line in lines if line.startswith("seqpipe: error:")] == [lines[-1]], proc.stderr
    for text in expected:
        assert text in lines[-1], f"{text!r} not in {lines[-1]!r}"
    return lines[-1]


def predict_refused(repo: Path, tmp_path: Path, model: str, *args: str, expected: tuple[str, ...]) -> str:
    """`seqpipe predict MODEL ARGS --output OUT` refused, OUT not written, nothing left beside it."""
    output = tmp_path / "out" / "prediction"
    output.parent.mkdir(parents=True)
    line = refused(["predict", model, *args, "--output", str(output)], repo, *expected)
    assert list(output.parent.iterdir()) == [], "predict wrote or left something"
    return line


@pytest.fixture
def work(trained_repo: Path, tmp_path: Path) -> Callable[[str], Path]:  # noqa: F811
    """A folder with the trained copy's params; `raw(model)` copies that model's raw data there."""
    folder = tmp_path / "work"
    folder.mkdir()
    write_params(folder / "params.yaml", trained_overrides())

    def raw(model: str) -> Path:
        target = folder / "data/raw" / model
        shutil.copytree(trained_repo / "data/raw" / model, target)
        return target
    return raw


def preprocess_refused(raw: Path, model: str, *expected: str) -> str:
    """`seqpipe preprocess MODEL` in the work folder of `raw` refused, with no processed output."""
    root = raw.parents[2]
    line = refused(["preprocess", model], root, *expected)
    assert not (root / "data/processed" / model).exists()
    return line


# ---- 11. the time axis ---------------------------------------------------------------------------

def bandwidth_frame(repo: Path) -> pd.DataFrame:
    return pd.read_csv(repo / "data/raw/bandwidth/bandwidth.csv")


def restamped(frame: pd.DataFrame, stamps: pd.DatetimeIndex) -> pd.DataFrame:
    return frame.assign(timestamp=stamps[: len(frame)].strftime(STAMP))


def test_predict_input_at_another_cadence_or_with_a_gap_is_refused_naming_file_and_row(
        trained_repo: Path, tmp_path: Path) -> None:  # noqa: F811
    frame = bandwidth_frame(trained_repo)
    seconds = tmp_path / "seconds.csv"   # the model was trained on 1-minute rows
    restamped(frame, pd.date_range("2025-01-01", periods=len(frame), freq="s")).to_csv(seconds, index=False)
    predict_refused(trained_repo, tmp_path, "bandwidth", "--input", str(seconds),
                    expected=(str(seconds), "data row 2 comes 1 s after the previous row", "cadence of 1 min"))
    stamps = pd.to_datetime(frame["timestamp"])
    with pytest.raises(PredictInputError, match=r"^data: row 200 \(column 'timestamp'\) comes 30 days after the "
                                                r"previous row \(a gap: about 43,200 rows missing\)"):
        seqpipe.load(trained_repo / "models/bandwidth/model.pt").predict(
            frame.assign(timestamp=stamps.where(stamps.index < 200, stamps + pd.Timedelta(days=30))))


@pytest.mark.slow
def test_every_time_series_predict_refuses_a_gap_in_its_input(trained_repo: Path, tmp_path: Path) -> None:  # noqa: F811
    frame = bandwidth_frame(trained_repo)
    stamps = pd.to_datetime(frame["timestamp"])
    gap = tmp_path / "gap.csv"
    frame.assign(timestamp=stamps.where(stamps.index < 200, stamps + pd.Timedelta(days=30)).dt.strftime(STAMP)
                 ).to_csv(gap, index=False)
    predict_refused(trained_repo, tmp_path / "a", "bandwidth", "--input", str(gap),
                    expected=(str(gap), "data row 201 comes 30 days after the previous row (a gap"))
    signal = pd.read_csv(trained_repo / "examples/freq_filter_signal.csv")
    slow = tmp_path / "signal.csv"   # sampled at 10 Hz; the model was trained at 50 Hz
    signal.assign(time_s=np.arange(len(signal)) / 10).to_csv(slow, index=False)
    predict_refused(trained_repo, tmp_path / "b", "freq_filter", "--input", str(slow),
                    expected=(str(slow), "column 'time_s' at data row 2 comes 0.1 s", "0.02 s apart (50 Hz)"))
    folder = tmp_path / "maps"
    shutil.copytree(trained_repo / "data/raw/ice_forecast", folder)
    for path in sorted(folder.glob("N_*.tif"))[-5:-2]:   # 3 days in a row: more than max_gap_days (2 when tiny)
        path.unlink()
    predict_refused(trained_repo, tmp_path / "c", "ice_forecast", "--input", str(folder),
                    expected=(str(folder), "no file for the 3 days between", "at most 2 missing days"))
    pair = sorted((trained_repo / "data/raw/ice_change/pair_0000").glob("N_*.tif"))
    predict_refused(trained_repo, tmp_path / "d", "ice_change", "--before", str(pair[1]), "--after", str(pair[0]),
                    expected=(str(pair[0]), "before --before", "the earlier date"))


def test_preprocess_refuses_a_gap_but_takes_a_business_day_calendar_as_a_cadence(
        work: Callable[[str], Path], trained_repo: Path) -> None:  # noqa: F811
    raw = work("bandwidth")
    frame = bandwidth_frame(trained_repo)
    days = pd.bdate_range("2015-01-01", periods=len(frame) + 3).delete([10, 11, 150])   # weekends and holidays absent
    restamped(frame, days).to_csv(raw / "bandwidth.csv", index=False)
    run(["seqpipe", "preprocess", "bandwidth"], raw.parents[2])
    stats = json.loads((raw.parents[2] / "data/processed/bandwidth/stats.json").read_text(encoding="utf-8"))
    assert (stats["cadence_s"], stats["business_days"]) == (86400.0, True)
    shutil.rmtree(raw.parents[2] / "data/processed")
    minutes = pd.date_range("2025-01-01", periods=len(frame), freq="min")
    restamped(frame, minutes.where(minutes < minutes[300], minutes + pd.Timedelta(days=30))).to_csv(
        raw / "bandwidth.csv", index=False)
    preprocess_refused(raw, "bandwidth", "bandwidth.csv: data row 301 comes 30 days after the previous row",
                       "cadence (its median step) is 1 min")


@pytest.mark.slow
def test_a_business_day_model_predicts_across_weekends_and_holidays_but_not_on_a_saturday(
        work: Callable[[str], Path], trained_repo: Path, tmp_path: Path) -> None:  # noqa: F811
    raw = work("bandwidth")
    root = raw.parents[2]
    frame = bandwidth_frame(trained_repo)
    days = pd.bdate_range("2015-01-01", periods=len(frame) + 3).delete([10, 11, 150])
    restamped(frame, days).to_csv(raw / "bandwidth.csv", index=False)
    for stage in ("preprocess", "train"):
        run(["seqpipe", stage, "bandwidth"], root)
    line = run(["seqpipe", "predict", "bandwidth", "--input", str(raw / "bandwidth.csv"), "--output",
                str(tmp_path / "f.csv")], root).stdout
    last = pd.Timestamp(days[len(frame) - 1])
    assert f"to {(last + pd.offsets.BDay(1)).strftime(STAMP)})" in line, line   # the next business day
    daily = tmp_path / "daily.csv"
    restamped(frame, pd.date_range("2015-01-01", periods=len(frame))).to_csv(daily, index=False)
    predict_refused(root, tmp_path, "bandwidth", "--input", str(daily),
                    expected=(str(daily), "data row 3 falls on a Saturday", "cadence of business days"))


def test_a_stray_file_far_from_the_others_is_refused_naming_the_files_on_either_side(
        work: Callable[[str], Path]) -> None:
    raw = work("ice_forecast")
    first = sorted(raw.glob("N_*.tif"))[0]
    shutil.copy(first, raw / "N_18500101_concentration_v3.0.tif")   # a stray file 170 years back
    preprocess_refused(raw, "ice_forecast", "no file for the 61,725 days between N_18500101_concentration_v3.0.tif "
                       f"and {first.name}", "models.ice_forecast.preprocess.max_gap_days")
    raw = work("crop_ndvi")
    index = raw / "scenes.json"
    scenes = json.loads(index.read_text(encoding="utf-8"))["scenes"]
    stray = {**scenes[0], "date": "1850-06-01"}
    index.write_text(json.dumps({"scenes": [stray, *scenes]}), encoding="utf-8")
    preprocess_refused(raw, "crop_ndvi", f"between 1850-06-01 ({scenes[0]['red']['file']}) and {scenes[0]['date']}")


def test_api_maps_with_a_longer_gap_than_the_model_fills_are_refused(trained_repo: Path) -> None:  # noqa: F811
    predictor = seqpipe.load(trained_repo / "models/ice_forecast/model.pt")
    maps = np.full((10, 16, 16), 50.0)
    maps[4:7] = np.nan   # 3 days without a value in a row, more than max_gap_days (2 when tiny)
    with pytest.raises(PredictInputError, match=r"^maps: days 4\.\.6 hold no value, 3 in a row; the model fills at "
                                                r"most 2"):
        predictor.predict(maps)
    maps[4] = 50.0
    assert predictor.predict(maps).shape == (3, 16, 16)   # 2 in a row: filled


# ---- 12. a user's scenes.json -----------------------------------------------------------------------

def _scenes(edit: Callable[[list[dict]], object]) -> Callable[[list[dict]], str]:
    return lambda scenes: json.dumps(edit(json.loads(json.dumps(scenes))))


def _set(k: int, key: str, value: object) -> Callable[[list[dict]], str]:
    def edit(scenes: list[dict]) -> dict:
        scenes[k][key] = value
        return {"scenes": scenes}
    return _scenes(edit)


def _drop(k: int, key: str) -> Callable[[list[dict]], str]:
    def edit(scenes: list[dict]) -> dict:
        del scenes[k][key]
        return {"scenes": scenes}
    return _scenes(edit)


SCENES_CASES = {
    "not-json": (lambda scenes: "{scenes: [", "not valid JSON"),
    "a-list": (_scenes(lambda scenes: scenes), 'expected an object with one key "scenes"'),
    "wrong-top-level-key": (_scenes(lambda scenes: {"scene": scenes}), "found keys 'scene'"),
    "impossible-date": (_set(2, "date", "2023-02-30"), "scenes[2]: date '2023-02-30' is not a calendar date"),
    "unknown-band": (_set(2, "swir", {"file": "x.tif", "band": 1}), "unknown key 'swir'"),
    "missing-scl": (_drop(2, "scl"), 'no "scl" entry'),
    "band-not-an-object": (_set(2, "red", [1]), '"red" must be an object'),
    "file-outside-the-folder": (_set(2, "nir", {"file": "../../x.tif", "band": 1}), "not a relative path inside"),
    "duplicate-date": (_scenes(lambda scenes: {"scenes": [*scenes, scenes[3]]}), "repeats the date"),
}
DEFAULT_SCENES_CASES = ("not-json", "wrong-top-level-key", "impossible-date", "missing-scl")


@pytest.mark.parametrize("case", [pytest.param(c, marks=[] if c in DEFAULT_SCENES_CASES else [pytest.mark.slow])
                                  for c in SCENES_CASES])
def test_a_bad_scenes_json_is_one_error_naming_the_file_and_entry(case: str, work: Callable[[str], Path]) -> None:
    raw = work("crop_ndvi")
    index = raw / "scenes.json"
    make, expected = SCENES_CASES[case]
    index.write_text(make(json.loads(index.read_text(encoding="utf-8"))["scenes"]), encoding="utf-8")
    preprocess_refused(raw, "crop_ndvi", "data/raw/crop_ndvi/scenes.json", expected)


def test_scenes_in_any_order_forecast_from_the_latest_dates(trained_repo: Path, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "stack"
    shutil.copytree(trained_repo / "data/raw/crop_ndvi", folder)
    index = folder / "scenes.json"
    scenes = json.loads(index.read_text(encoding="utf-8"))["scenes"]
    index.write_text(json.dumps({"scenes": scenes[::-1]}), encoding="utf-8")   # latest first
    line = run(["seqpipe", "predict", "crop_ndvi", "--input", str(folder), "--output", str(tmp_path / "next.tif")],
               trained_repo).stdout
    assert f"on the last date {scenes[-1]['date']}" in line, line
    with rasterio.open(tmp_path / "next.tif") as src:
        assert src.tags()["LAST_INPUT_DATE"] == scenes[-1]["date"]


# ---- 13. the Python API checks before it casts ---------------------------------------------------------

@pytest.fixture(scope="module")
def predictors(trained_repo: Path) -> dict[str, seqpipe.Predictor]:  # noqa: F811
    return {name: seqpipe.load(trained_repo / "models" / name / "model.pt")
            for name in ("bandwidth", "freq_filter", "crop_ndvi", "ice_forecast", "ice_change", "ice_type")}


def _bandwidth_rows(n: int = 12) -> np.ndarray:
    return np.tile(np.array([500.0, 30.0, 0.5, 5.0, 2.0, 3.0, 50.0, 20.0, 1.0]), (n, 1))


API_CASES = {
    "complex-values": ("freq_filter", lambda: (np.ones(50) + 1j,), {}, r"^signal: not numeric \(complex values"),
    "bool-mask": ("crop_ndvi", lambda: (np.ones((6, 4, 4), bool),), {}, r"^ndvi: not numeric \(boolean values"),
    "text-column": ("bandwidth", lambda: (pd.DataFrame(_bandwidth_rows(), columns=BANDWIDTH).astype({"rtt_ms": str}),),
                    {}, r"^data: column 'rtt_ms' is not numeric"),
    "text-in-a-list": ("freq_filter", lambda: ([1.0, 2.0, "3"] * 10,), {}, r"^signal: not numeric"),
    "beyond-float32": ("ice_type", lambda: (np.full((3, 16, 16), 1e39),), {},
                       r"^patches: value 1e\+39 at index \(0, 0, 0\) is beyond float32's range"),
    "overflow-once-standardised": ("bandwidth", lambda: (np.vstack([_bandwidth_rows(), [[3e38] * 9]]),), {},
                                   r"^data: value 3e\+38 at index \(12, \d\) overflows float32.*once standardised"),
    "threshold-as-text": ("ice_change", lambda: (np.zeros((16, 16)), np.zeros((16, 16))), {"threshold": "0.5"},
                          r"^threshold: '0\.5' is a str; expected a probability"),
    "threshold-nan": ("ice_change", lambda: (np.zeros((16, 16)), np.zeros((16, 16))), {"threshold": float("nan")},
                      r"^threshold: nan; expected a probability"),
    "unknown-option": ("ice_forecast", lambda: (np.zeros((8, 16, 16)),), {"threshold": 0.5},
                       r"^predict: got an unexpected keyword argument 'threshold'; ice_forecast takes maps:"),
    "missing-argument": ("ice_change", lambda: (np.zeros((16, 16)),), {},
                         r"^predict: missing a required argument: 'after'"),
}
BANDWIDTH = ["throughput_mbps", "rtt_ms", "packet_loss", "jitter_ms", "time_of_day", "day_of_week",
             "congestion_window", "queue_depth", "retransmits"]


@pytest.mark.parametrize("case", list(API_CASES))
def test_the_api_checks_dtype_range_and_arguments_before_computing(case: str, predictors: dict) -> None:
    model, inputs, options, message = API_CASES[case]
    with pytest.raises(PredictInputError, match=message) as error:
        predictors[model].predict(*inputs(), **options)
    assert isinstance(error.value, SeqpipeError) and "\n" not in str(error.value)


def test_the_api_still_takes_integers_float32_and_a_numeric_threshold(predictors: dict) -> None:
    signal = np.arange(50, dtype=np.int64) % 7
    np.testing.assert_allclose(predictors["freq_filter"].predict(signal),
                               predictors["freq_filter"].predict(signal.astype(np.float32)), rtol=1e-6)
    change = predictors["ice_change"].predict(np.zeros((16, 16), np.uint8), np.full((16, 16), 90.0, np.float32),
                                              threshold=np.float32(0.5))
    assert change.shape == (16, 16) and change.dtype == np.uint8
