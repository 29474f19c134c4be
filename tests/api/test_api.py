"""`seqpipe.load(...).predict` on the tiny trained copy (tests/api/conftest.py): the same numbers as
`seqpipe predict` writes for every model, one clear error for a bad in-memory input, and `import
seqpipe` without torch. The G02135 and patch GeoTIFFs are read here with rasterio directly."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

import seqpipe
from seqpipe import pipelines
from seqpipe.errors import SeqpipeError
from seqpipe.stages.predict import PredictInputError
from tests.conftest import run

POLE_HOLE, LAND, COAST = 2510, 2540, 2530   # G02135 flags


@pytest.fixture
def repo(trained_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(trained_repo)   # seqpipe.load("MODEL") reads models/MODEL/model.pt of the current folder
    return trained_repo


def cli(repo: Path, model: str, output: Path, **inputs: str) -> str:
    """`seqpipe predict MODEL --input ... --output OUTPUT` in `repo`; its summary line."""
    args = [a for option, path in inputs.items() for a in (f"--{option}", path)]
    return run(["seqpipe", "predict", model, *args, "--output", str(output)], repo).stdout.strip()


def percent(path: Path) -> np.ndarray:
    """A G02135 file as concentration percent: NaN on land, coast and missing; the pole hole 100."""
    with rasterio.open(path) as src:
        raw = src.read(1)
    return np.where(raw == POLE_HOLE, 100.0, np.where(raw <= 1000, raw / 10.0, np.nan))


def test_import_seqpipe_loads_torch_only_in_load(repo: Path) -> None:
    code = ("import sys, seqpipe\nassert 'torch' not in sys.modules\np = seqpipe.load('bandwidth')\n"
            "print('torch' in sys.modules, p.model, p.path, type(p).__name__)")
    assert run([sys.executable, "-c", code], repo).stdout.split() == ["True", "bandwidth", "models/bandwidth/model.pt",
                                                                      "Predictor"]


def test_every_model_has_an_array_core_described_for_the_api(repo: Path) -> None:
    for name in pipelines.names():
        spec = pipelines.get(name)
        module = spec.stage("predict")
        assert callable(module.predict_array) and callable(module.predict), name
        assert spec.predict_help and spec.predict_example.startswith(f"seqpipe predict {name} "), name
        predictor = seqpipe.load(name)
        assert predictor.model == name and predictor.inputs == module.INPUTS and "->" in predictor.inputs
        assert (predictor.classes is not None) == (spec.task == "classification")


def test_bandwidth_matches_cli(repo: Path, tmp_path: Path) -> None:
    line = cli(repo, "bandwidth", tmp_path / "f.csv", input="data/raw/bandwidth/bandwidth.csv")
    written = pd.read_csv(tmp_path / "f.csv")
    predictor = seqpipe.load("bandwidth")
    frame = pd.read_csv("data/raw/bandwidth/bandwidth.csv")
    forecast, intervals = predictor.predict(frame)
    targets = predictor.stats["target_columns"]
    assert forecast.shape == (len(frame) - predictor.stats["window"] + 1, 4) == (len(written), 4)
    np.testing.assert_allclose(forecast, written[targets].to_numpy(), atol=5.1e-5)
    assert sorted(intervals) == [0.8, 0.95]
    for level, (lower, upper) in intervals.items():
        columns = [f"{t}_{side}_{level * 100:g}" for side in ("lower", "upper") for t in targets]
        np.testing.assert_allclose(np.hstack([lower, upper]), written[columns].to_numpy(), atol=5.1e-5)
        assert (lower < forecast).all() and (forecast < upper).all()
    array = frame[predictor.stats["feature_columns"]].to_numpy()   # an array in the trained column order
    np.testing.assert_array_equal(predictor.predict(array)[0], forecast)
    assert line.startswith(f"wrote {tmp_path / 'f.csv'}: {len(written)} forecast rows")


def test_freq_filter_matches_cli(repo: Path, tmp_path: Path) -> None:
    cli(repo, "freq_filter", tmp_path / "f.csv", input="examples/freq_filter_signal.csv")
    written = pd.read_csv(tmp_path / "f.csv")
    predictor = seqpipe.load(repo / "models/freq_filter/model.pt")   # by path
    signal = pd.read_csv("examples/freq_filter_signal.csv")["signal"].to_numpy()
    filtered = predictor.predict(signal)
    names = [f"{f:g}hz" for f in predictor.stats["frequencies_hz"]]
    assert filtered.shape == (len(signal), len(names))
    np.testing.assert_allclose(filtered, written[names].to_numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(predictor.predict(pd.DataFrame({"signal": signal})), filtered)


def test_crop_ndvi_matches_cli_and_the_summary_counts_the_file(repo: Path, tmp_path: Path) -> None:
    from seqpipe.pipelines.crop_ndvi.preprocess import Stack, date_grid, read_scenes, to_grid

    line = cli(repo, "crop_ndvi", tmp_path / "n.tif", input="data/raw/crop_ndvi")
    with rasterio.open(tmp_path / "n.tif") as src:
        written, nodata = src.read(1), src.nodata
    predictor = seqpipe.load("crop_ndvi")
    raw = Path("data/raw/crop_ndvi")
    with Stack(raw, read_scenes(raw), predictor.stats["mask_scl"], False) as stack:   # every date, gridded
        series = to_grid(stack.ndvi(rasterio.windows.Window(0, 0, stack.grid.width, stack.grid.height)),
                         date_grid(stack.dates, predictor.stats["grid_days"]))
    forecast = predictor.predict(series)
    assert forecast.shape == written.shape
    np.testing.assert_array_equal(np.isnan(forecast), written == nodata)
    np.testing.assert_allclose(forecast[written != nodata], written[written != nodata], atol=1e-5)
    counts = re.search(r"(\d+)x(\d+) pixels, (\d+) forecast for \S+, (\d+) nodata \((\d+) masked .* on the last", line)
    width, height, valid, masked, last_masked = map(int, counts.groups())
    assert (width, height) == written.shape[::-1] and valid == int((written != nodata).sum())
    assert masked == written.size - valid and last_masked == int(np.isnan(series[-1]).sum()) > 0
    assert last_masked < masked or "gap over" not in line


def test_ice_forecast_matches_cli(repo: Path, tmp_path: Path) -> None:
    line = cli(repo, "ice_forecast", tmp_path / "f.tif", input="data/raw/ice_forecast")
    with rasterio.open(tmp_path / "f.tif") as src:
        written, valid = src.read(), src.read_masks(1) > 0
    predictor = seqpipe.load("ice_forecast")
    files = {dt.datetime.strptime(p.name[2:10], "%Y%m%d").date(): p for p in Path("data/raw/ice_forecast").glob("N_*.tif")}
    days = [max(files) - dt.timedelta(days=k) for k in reversed(range(predictor.stats["history_days"]))]
    shape = written.shape[1:]
    maps = np.stack([percent(files[d]) if d in files else np.full(shape, np.nan) for d in days])
    forecast = predictor.predict(maps)
    assert forecast.shape == written.shape == (predictor.stats["horizon_days"], *shape)
    assert np.abs(forecast[:, valid] - written[:, valid] / 10.0).max() <= 0.05 + 1e-4   # the file holds x10 codes
    land = np.isnan(maps).all(axis=0)
    np.testing.assert_array_equal(np.isnan(forecast).all(axis=0), land)
    assert f"{int(valid.sum())} forecast" in line


def test_ice_change_matches_cli(repo: Path, tmp_path: Path) -> None:
    before, after = sorted(Path("data/raw/ice_change/pair_0000").glob("N_*.tif"))
    line = cli(repo, "ice_change", tmp_path / "c.tif", before=str(before), after=str(after))
    with rasterio.open(tmp_path / "c.tif") as src:
        written = src.read(1)
    predictor = seqpipe.load("ice_change")
    assert predictor.options == {"threshold": 0.5}
    change = predictor.predict(percent(before), percent(after))
    evaluated = written != 255
    np.testing.assert_array_equal(change[evaluated], written[evaluated])
    with rasterio.open(before) as a, rasterio.open(after) as b:
        pole = (a.read(1) == POLE_HOLE) | (b.read(1) == POLE_HOLE)   # given as 100 percent: evaluated by the API
    np.testing.assert_array_equal(change == 255, ~evaluated & ~pole)
    assert f"{int((written == 1).sum())} changed, {int((written == 0).sum())} unchanged" in line
    strict = predictor.predict(percent(before), percent(after), threshold=0.99)
    assert (strict == 1).sum() <= (change == 1).sum() and ((strict == 255) == (change == 255)).all()


def test_ice_type_matches_cli(repo: Path, tmp_path: Path) -> None:
    cli(repo, "ice_type", tmp_path / "t.csv", input="data/raw/ice_type/patches")
    written = pd.read_csv(tmp_path / "t.csv")
    predictor = seqpipe.load("ice_type")
    patches = []
    for name in written["file"]:
        with rasterio.open(Path("data/raw/ice_type/patches") / name) as src:
            patches.append(src.read())
    index, probs = predictor.predict(np.stack(patches))
    assert predictor.classes == ["open_water", "thin_ice", "thick_ice"]
    assert [predictor.classes[k] for k in index] == written["predicted"].tolist()
    np.testing.assert_allclose(probs, written[[f"p_{c}" for c in predictor.classes]].to_numpy(), atol=5.1e-5)
    one_index, one_probs = predictor.predict(patches[0])   # one patch: no batch axis
    assert one_index == index[0] and one_probs.shape == (3,)


BAD_INPUTS = [
    ("bandwidth", lambda: (pd.DataFrame({"rtt_ms": [1.0] * 20}),), r"data: missing column\(s\) throughput_mbps.*"
     r"expected a DataFrame with columns throughput_mbps, rtt_ms"),
    ("bandwidth", lambda: (np.zeros((3, 9)),), r"data: 3 rows, need at least 8 \(the model's window\)"),
    ("bandwidth", lambda: (np.full((20, 9), np.nan),), r"data: value nan at index \(0, 0\) is not finite"),
    ("freq_filter", lambda: (np.zeros((50, 3)),), r"signal: shape \(50, 3\); expected a DataFrame with columns signal"),
    ("crop_ndvi", lambda: (np.zeros((16, 16)),), r"ndvi: shape \(16, 16\); expected an NDVI stack \[steps, H, W\]"),
    ("crop_ndvi", lambda: (np.zeros((2, 4, 4)),), r"ndvi: 2 grid steps .* needs at least 5"),
    ("crop_ndvi", lambda: (np.full((6, 4, 4), 2.0),), r"ndvi: value 2 at index \(0, 0, 0\) is outside -1\.\.1"),
    ("ice_forecast", lambda: (np.zeros((3, 16, 16)),), r"maps: 3 days; the model reads the last 8"),
    ("ice_forecast", lambda: (np.full((8, 16, 16), np.nan),), r"maps: only 0 of the last 8 days hold a value"),
    ("ice_change", lambda: (np.zeros((16, 16)), np.zeros((8, 8))), r"after: shape \(8, 8\) differs from before's"),
    ("ice_change", lambda: (np.zeros((4, 4)), np.full((4, 4), 1000.0)), r"after: value 1000 .* outside 0\.\.100 percent"),
    ("ice_type", lambda: (np.zeros((3, 8, 8)),), r"patches: shape \(3, 8, 8\); expected one patch \[3, 16, 16\]"),
    ("ice_type", lambda: ("patch.tif",), r"patches: not numeric"),
]


@pytest.mark.parametrize(("model", "inputs", "message"), BAD_INPUTS,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(BAD_INPUTS)])
def test_bad_input_is_one_error_naming_the_argument(repo: Path, model: str, inputs, message: str) -> None:
    predictor = seqpipe.load(model)
    with pytest.raises(PredictInputError, match=message) as error:
        predictor.predict(*inputs())
    assert isinstance(error.value, ValueError) and isinstance(error.value, SeqpipeError)
    assert "\n" not in str(error.value)


def test_load_errors_name_the_model_or_file(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SeqpipeError, match=r"^nope: not found \(neither a model file nor a model name; models: "):
        seqpipe.load("nope")
    with pytest.raises(SeqpipeError, match=r"models: is a folder; pass a model file"):
        seqpipe.load("models")
    monkeypatch.chdir(tmp_path)   # no models/ here
    with pytest.raises(SeqpipeError, match=r"^models/ice_type/model.pt: not found; train ice_type first"):
        seqpipe.load("ice_type")
    assert seqpipe.load(repo / "models/ice_change/model.pt").options == {}   # no params.yaml here: the defaults
