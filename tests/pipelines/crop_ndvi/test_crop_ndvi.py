"""crop_ndvi: real tiny GeoTIFF stacks (16x16) written here; NDVI, masking, grids, corrupt files, predict."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window

from seqpipe.data.rasters import iter_windows, tile_aligned
from seqpipe.data.sentinel2 import SYNTHETIC_LAYOUT, StackLayout, index_stack
from seqpipe.data.series import Standardizer
from seqpipe.data.windows import load_windows
from seqpipe.errors import SeqpipeError
from seqpipe.pipelines.crop_ndvi.download import CropSyntheticParams, write_synthetic
from seqpipe.pipelines.crop_ndvi.preprocess import PreprocessParams, Stack, preprocess
from tests.conftest import run, tiny_overrides, write_params

SIZE = 16


def write_stack(folder: Path, n_dates: int = 12, seed: int = 0, baselines: tuple[str, ...] = ("05.09",),
                epsg: int = 32633, clouds: dict | None = None, size: int = SIZE, level: float = 0.2) -> list[dict]:
    """B04/B08/SCL GeoTIFFs per date (5 days apart), NDVI `level` and up (0.2..0.8); returns each date's DN
    arrays for hand checks."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cols = np.mgrid[0:size, 0:size][1]
    written = []
    for k in range(n_dates):
        date = str(np.datetime64("2023-06-01") + 5 * k).replace("-", "")
        baseline = baselines[k % len(baselines)]
        offset = 1000 if float(baseline) >= 4 else 0
        truth = level + 0.6 * np.sin(np.pi * k / n_dates) * (0.5 + cols / (2 * size)) + rng.normal(0, 0.01, cols.shape)
        red = np.round(0.2 * (1 - truth) * 10000 + offset).astype(np.uint16)
        nir = np.round(0.2 * (1 + truth) * 10000 + offset).astype(np.uint16)
        scl = np.full(cols.shape, 4, np.uint8)
        for (row, col), value in (clouds or {}).get(k, {}).items():
            scl[row, col] = value
        profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "crs": CRS.from_epsg(epsg),
                   "transform": from_origin(399960.0, 5300040.0, 10.0, 10.0)}
        for band, data, dtype in (("B04", red, "uint16"), ("B08", nir, "uint16"), ("SCL", scl, "uint8")):
            with rasterio.open(folder / f"T33UVP_{date}_{band}.tif", "w", dtype=dtype, nodata=0, **profile) as dst:
                dst.write(data, 1)
                dst.update_tags(PROCESSING_BASELINE=baseline)
        written.append({"date": date, "red": red, "nir": nir, "scl": scl, "offset": offset})
    return written


def open_stack(folder: Path, reproject: bool = False) -> Stack:
    scenes = index_stack(folder, SYNTHETIC_LAYOUT)
    return Stack(folder, scenes, [0, 1, 3, 8, 9, 10], reproject)


def test_ndvi_is_the_hand_computation_with_and_without_offset(tmp_path: Path) -> None:
    dates = write_stack(tmp_path, n_dates=2, baselines=("05.09", "03.01"))
    with open_stack(tmp_path) as stack:
        values = stack.ndvi(Window(0, 0, SIZE, SIZE))
    for k, d in enumerate(dates):
        red = (d["red"].astype(np.float64) - d["offset"]) / 10000
        nir = (d["nir"].astype(np.float64) - d["offset"]) / 10000
        np.testing.assert_allclose(values[k], (nir - red) / (nir + red), rtol=1e-5)
    assert dates[0]["offset"] == 1000 and dates[1]["offset"] == 0
    red, nir = (int(dates[0][b][3, 5]) for b in ("red", "nir"))  # one pixel spelled out
    assert values[0][3, 5] == pytest.approx(((nir - 1000) - (red - 1000)) / ((nir - 1000) + (red - 1000)), rel=1e-5)


def test_local_multiband_files_with_band_indexes_and_date_from_a_tag(tmp_path: Path) -> None:
    layout = StackLayout(pattern=r"scene_\w+\.tif", date_format="%Y-%m-%d", date_tag="ACQ_DATE",
                         red="3", nir="1", scl="2")
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 3, "dtype": "uint16",
               "crs": CRS.from_epsg(32633), "transform": from_origin(399960.0, 5300040.0, 10.0, 10.0)}
    nir, scl, red = np.full((SIZE, SIZE), 4000), np.full((SIZE, SIZE), 4), np.full((SIZE, SIZE), 1500)
    for name, date in (("scene_b", "2023-06-06"), ("scene_a", "2023-06-01")):
        with rasterio.open(tmp_path / f"{name}.tif", "w", **profile) as dst:
            dst.write(np.stack([nir, scl, red]).astype(np.uint16))
            dst.update_tags(ACQ_DATE=date, BOA_ADD_OFFSET="-1000", BOA_QUANTIFICATION_VALUE="10000")
    scenes = index_stack(tmp_path, layout)
    assert [(s["date"], s["red"]["file"], s["red"]["band"]) for s in scenes] == [
        ("2023-06-01", "scene_a.tif", 3), ("2023-06-06", "scene_b.tif", 3)]
    with Stack(tmp_path, scenes, [3, 8, 9, 10], False) as stack:
        assert stack.ndvi(Window(0, 0, 4, 4)) == pytest.approx((3000 - 500) / (3000 + 500))
    bad = StackLayout(pattern=r"scene_\w+\.tif", date_format="%Y%m%d", date_tag="ACQ_DATE", red="3", nir="1", scl="2")
    with pytest.raises(SeqpipeError, match="scene_a.tif: date '2023-06-01' does not match date_format"):
        index_stack(tmp_path, bad)


def test_cloud_shadow_cirrus_nodata_and_saturated_pixels_are_masked(tmp_path: Path) -> None:
    masked = {(0, 0): 3, (1, 1): 8, (2, 2): 9, (3, 3): 10, (4, 4): 0, (5, 5): 1}
    write_stack(tmp_path, n_dates=2, clouds={0: {**masked, (6, 6): 5, (7, 7): 6}})
    with rasterio.open(tmp_path / "T33UVP_20230601_B08.tif", "r+") as ds:  # saturated and nodata DN
        nir = ds.read(1)
        nir[8, 8], nir[9, 9] = 65535, 0
        ds.write(nir, 1)
    with open_stack(tmp_path) as stack:
        values = stack.ndvi(Window(0, 0, SIZE, SIZE))
    bad = np.isnan(values[0])
    assert {tuple(map(int, rc)) for rc in np.argwhere(bad)} == {*masked, (8, 8), (9, 9)}
    assert not np.isnan(values[1]).any()


@pytest.mark.parametrize("change", ["crs", "shape"])
def test_grid_mismatch_is_one_clear_error_naming_both_files(tmp_path: Path, change: str) -> None:
    write_stack(tmp_path, n_dates=3)
    other = tmp_path / "other"
    write_stack(other, n_dates=3, epsg=32632 if change == "crs" else 32633, size=SIZE if change == "crs" else 12)
    for band in ("B04", "B08", "SCL"):
        (other / f"T33UVP_20230606_{band}.tif").replace(tmp_path / f"T33UVP_20230606_{band}.tif")
    with pytest.raises(SeqpipeError) as info:
        open_stack(tmp_path)
    message = str(info.value)
    assert "\n" not in message and "differs from" in message
    assert "T33UVP_20230606_B04.tif" in message and "T33UVP_20230601_B04.tif" in message
    with open_stack(tmp_path, reproject=True) as stack:  # WarpedVRT onto the first date's grid
        assert stack.ndvi(Window(0, 0, SIZE, SIZE)).shape == (3, SIZE, SIZE)


def test_windowed_reading_equals_the_whole_array_and_preprocess_ignores_block_size(tmp_path: Path,
                                                                                   tiny_params) -> None:
    raw, size = tmp_path / "raw", 40
    write_stack(raw, size=size, clouds={3: {(r, c): 9 for r in range(4) for c in range(6)}})
    with open_stack(raw) as stack:
        whole = stack.ndvi(Window(0, 0, size, size))
        pieced = np.full_like(whole, -5)
        for win in iter_windows(size, size, 16):
            rows, cols = win.toslices()
            pieced[:, rows, cols] = stack.ndvi(win)
    np.testing.assert_array_equal(pieced, whole)

    def run_with(block: int) -> dict[str, np.ndarray]:
        out = tmp_path / f"out{block}"
        out.mkdir()
        p = tiny_params.section("crop_ndvi", "preprocess", PreprocessParams)
        stats = preprocess(type(p)(**{**p.__dict__, "block_size": block}), 1, raw, out)
        windows = sum(stats["arrays"][f"starts_{split}"]["shape"][0] for split in ("train", "val", "test"))
        assert stats["arrays"]["ndvi"]["shape"][0] < windows * (p.window + 1) / 2   # each row once, not per window
        return {k: np.asarray(v) for k, v in load_windows(out, "test", stats["windows"]).items()}

    small, large = run_with(16), run_with(256)
    order = [np.lexsort(a["meta"].T) for a in (small, large)]
    assert len(order[0]) > 20
    for key in ("x", "y", "meta"):
        np.testing.assert_array_equal(small[key][order[0]], large[key][order[1]])


def test_read_windows_round_up_to_whole_tiles(tmp_path: Path) -> None:
    for name, layout, expected in (("tiled", {"tiled": True, "blockxsize": 32, "blockysize": 32}, 64),
                                   ("striped", {}, 40)):
        path = tmp_path / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=96, height=96, count=1, dtype="uint16", **layout) as dst:
            dst.write(np.zeros((96, 96), np.uint16), 1)
        with rasterio.open(path) as ds:
            assert tile_aligned(40, ds) == expected, name


def test_synthetic_download_is_byte_deterministic(tmp_path: Path) -> None:
    p = CropSyntheticParams(width=16, height=16, start="2023-04-01", n_dates=5, revisit_days=5,
                            missing_acquisitions=0.0, epsg=32633, origin_x=399960.0, origin_y=5300040.0,
                            pixel_size=10.0, field_size_px=6, cloud_fraction=0.3, baseline="05.09")
    digests = []
    for k in range(2):
        write_synthetic(p, 7, tmp_path / str(k))
        files = sorted((tmp_path / str(k)).iterdir())
        digests.append({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files})
    assert digests[0] == digests[1] and len(digests[0]) == 5 * 3 + 1
    with rasterio.open(tmp_path / "0" / "T33UVP_20230401_B04.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and ds.res == (10.0, 10.0) and ds.dtypes[0] == "uint16"
        assert ds.nodata == 0 and ds.tags()["PROCESSING_BASELINE"] == "05.09"


def test_local_stack_train_predict_corrupt_file_and_accuracy_gate(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    # the last date is cloudy over a corner: those pixels must be nodata in the forecast
    write_stack(stack, n_dates=14, clouds={13: {(r, c): 8 for r in range(3) for c in range(3)}})
    work = tmp_path / "work"
    work.mkdir()
    overrides = {**tiny_overrides("crop_ndvi"), "models.crop_ndvi.download.source": "local",
                 "models.crop_ndvi.download.local.path": str(stack)}
    write_params(work / "params.yaml", overrides)
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "crop_ndvi"], work)
    assert json.loads((work / "data/raw/crop_ndvi/manifest.json").read_text())["synthetic"] is False

    out = work / "next_ndvi.tif"
    proc = run(["seqpipe", "predict", "crop_ndvi", "--input", str(stack), "--output", str(out)], work)
    assert "training range" not in proc.stderr   # the dates it was trained on
    with rasterio.open(out) as got, rasterio.open(stack / "T33UVP_20230805_B04.tif") as ref:
        assert got.crs == ref.crs and got.transform == ref.transform and got.shape == ref.shape
        assert got.dtypes[0] == "float32" and got.count == 1
        forecast = got.read(1)
        assert (forecast[:3, :3] == got.nodata).all()
        assert np.isfinite(forecast).all() and (np.abs(forecast[5:, 5:]) < 1.5).all()
        assert got.tags()["FORECAST_DATE"] == "2023-08-10"

    # another field far below the training NDVI (0.2..0.8): warned once, with the share of forecast pixels
    water = tmp_path / "water"
    write_stack(water, n_dates=14, level=-0.6, clouds={13: {(r, c): 8 for r in range(4) for c in range(SIZE)}})
    proc = run(["seqpipe", "predict", "crop_ndvi", "--input", str(water), "--output", str(work / "w.tif")], work)
    warned = [line for line in proc.stderr.splitlines() if "training range" in line]
    assert len(warned) == 1 and " WARNING " in warned[0], proc.stderr
    assert f"{water}: column 'ndvi': 100.0% of input rows lie more than 10% of the training range" in warned[0]

    write_params(work / "params.yaml", {**overrides, "models.crop_ndvi.evaluate.min_accuracy": 1.0,
                                        "models.crop_ndvi.evaluate.fail_below_min_accuracy": True})
    proc = run(["seqpipe", "evaluate", "crop_ndvi"], work, check=False)
    assert proc.returncode == 1 and "evaluate.min_accuracy 1.0" in proc.stderr
    assert not (work / "metrics/crop_ndvi.json").exists()

    stats = (work / "data/processed/crop_ndvi/stats.json").read_bytes()
    damaged = stack / "T33UVP_20230611_B08.tif"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    run(["seqpipe", "download", "crop_ndvi"], work)
    proc = run(["seqpipe", "preprocess", "crop_ndvi"], work, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and lines[-1].startswith("seqpipe: error: data/raw/crop_ndvi/T33UVP_20230611_B08.tif")
    assert [p.name for p in (work / "data/processed").iterdir()] == ["crop_ndvi"]  # no temp folder left
    assert (work / "data/processed/crop_ndvi/stats.json").read_bytes() == stats    # the last good output stays
    # predict reads only the latest dates, so damage one of those
    damaged = stack / "T33UVP_20230731_B04.tif"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    proc = run(["seqpipe", "predict", "crop_ndvi", "--input", str(stack), "--output", str(work / "x.tif")],
               work, check=False)
    assert proc.returncode == 1 and "T33UVP_20230731_B04.tif" in proc.stderr
    assert [p.name for p in work.glob("*x.tif*")] == []  # no partial GeoTIFF, no temp file


def test_preprocess_records_and_warns_val_test_ndvi_beyond_the_training_range(tmp_path: Path, tiny_params,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    write_stack(raw, n_dates=14, size=24)
    index_stack(raw, SYNTHETIC_LAYOUT)   # scenes.json, as a download writes it
    p = tiny_params.section("crop_ndvi", "preprocess", PreprocessParams)

    def run_with(margin: float) -> dict:
        out = tmp_path / f"out{margin}"
        out.mkdir()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            return preprocess(type(p)(**{**p.__dict__, "range_margin": margin}), 1, raw, out)

    stats = run_with(0.0)
    scaler = Standardizer.from_dict(stats["scaler"])
    splits = {split: load_windows(tmp_path / "out0.0", split, stats["windows"]) for split in ("train", "val", "test")}
    rows = {split: scaler.inverse(np.concatenate([np.asarray(keys[k]).reshape(-1, n)
                                                  for k, n in (("x", p.window), ("y", 1))], 1))
            for split, keys in splits.items()}          # a row: one window and its target, in NDVI
    low, high = rows["train"].min(), rows["train"].max()
    assert stats["train_range"] == {"ndvi": pytest.approx([low, high], abs=1e-6)}
    expected = {s: float(((rows[s] < low - 1e-6) | (rows[s] > high + 1e-6)).any(1).mean()) for s in ("val", "test")}
    assert any(expected.values())   # the seeded field has a few val/test pixels beyond the training ones
    assert stats["out_of_range"] == {"ndvi": pytest.approx({s: f for s, f in expected.items() if f}, abs=1e-6)}
    (warned,) = [r.getMessage() for r in caplog.records if "training range" in r.getMessage()]
    assert warned.startswith(f"{raw}: column 'ndvi': ") and "lie more than 0% of the training range" in warned

    assert run_with(1.0)["out_of_range"] == {}
    assert not [r for r in caplog.records if "training range" in r.getMessage()]
