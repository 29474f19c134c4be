"""crop_ndvi values: a file's own nodata (value or mask) is invalid, NDVI outside [-1, 1] after scaling is
masked (a few) or refused (a wrong DN offset), and download.local.boa_add_offset fixes files whose tags
say baseline >= 04.00 but whose DN are already offset-free. Real GeoTIFFs written here, real CLI."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window

from seqpipe.data.sentinel2 import SYNTHETIC_LAYOUT, StackLayout, index_stack
from seqpipe.errors import SeqpipeError
from seqpipe.pipelines.crop_ndvi.preprocess import Stack
from tests.conftest import run, tiny_overrides, write_params

SIZE = 16
MASK_SCL = [0, 1, 3, 8, 9, 10]
LOCAL = "models.crop_ndvi.download.local"


def write_stack(folder: Path, n_dates: int = 12, offset: int = 1000, nodata: int = 0,
                edit: dict[int, dict] | None = None) -> list[dict]:
    """B04/B08/SCL per date (5 days apart), tagged baseline 05.09 / BOA_ADD_OFFSET -1000 whatever DN
    `offset` was really added; `edit[k]` = {"red": fn, "nir": fn} changes date k's DN arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = np.mgrid[0:SIZE, 0:SIZE][1]
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 1, "crs": CRS.from_epsg(32633),
               "transform": from_origin(399960.0, 5300040.0, 10.0, 10.0)}
    written = []
    for k in range(n_dates):
        date = str(np.datetime64("2023-06-01") + 5 * k).replace("-", "")
        truth = 0.2 + 0.6 * np.sin(np.pi * k / n_dates) * (0.5 + cols / (2 * SIZE))
        dn = {"red": np.round(0.2 * (1 - truth) * 10000 + offset).astype(np.uint16),
              "nir": np.round(0.2 * (1 + truth) * 10000 + offset).astype(np.uint16)}
        for band, fn in ((edit or {}).get(k) or {}).items():
            dn[band] = fn(dn[band])
        for name, band, data, dtype in (("B04", "red", dn["red"], "uint16"), ("B08", "nir", dn["nir"], "uint16"),
                                        ("SCL", "scl", np.full((SIZE, SIZE), 4, np.uint8), "uint8")):
            with rasterio.open(folder / f"T33UVP_{date}_{name}.tif", "w", dtype=dtype,
                               nodata=0 if band == "scl" else nodata, **profile) as dst:
                dst.write(data, 1)
                dst.update_tags(PROCESSING_BASELINE="05.09", BOA_ADD_OFFSET="-1000", BOA_QUANTIFICATION_VALUE="10000")
        written.append({"date": date, **dn})
    return written


def whole(folder: Path, layout: StackLayout = SYNTHETIC_LAYOUT) -> tuple[np.ndarray, Stack]:
    with Stack(folder, index_stack(folder, layout), MASK_SCL, False) as stack:
        return stack.ndvi(Window(0, 0, SIZE, SIZE)), stack


def test_a_declared_nodata_value_and_an_internal_mask_are_invalid_pixels(tmp_path: Path) -> None:
    block = (slice(2, 6), slice(3, 9))

    def nodata_block(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[block] = 12345
        return a

    write_stack(tmp_path, n_dates=2, nodata=12345, edit={k: {"red": nodata_block, "nir": nodata_block} for k in (0, 1)})
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp_path / "T33UVP_20230606_B08.tif", "r+") as ds:
        ds.nodata = None                       # date 2: an internal mask instead of a nodata value
        valid = np.full((SIZE, SIZE), 255, np.uint8)
        valid[10:12, :] = 0
        ds.write_mask(valid)
    values, _ = whole(tmp_path)
    assert np.isnan(values[0][block]).all() and np.isnan(values[1][block]).all()   # not NDVI 0.0 (12345 vs 12345)
    assert np.isnan(values[1][10:12]).all()
    assert np.isnan(values[0]).sum() == 24 and np.isnan(values[1]).sum() == 24 + 2 * SIZE


def test_a_few_ndvi_values_outside_the_range_are_masked_with_a_warning(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    def dark(a: np.ndarray) -> np.ndarray:   # red reflectance -0.001 over 3 pixels: NDVI > 1
        a = a.copy()
        a[0, :3] = 990
        return a

    write_stack(tmp_path, n_dates=2, edit={1: {"red": dark}})
    values, stack = whole(tmp_path)
    assert np.isnan(values[1][0, :3]).all() and np.isnan(values).sum() == 3
    assert np.nanmax(values) <= 1 and np.nanmin(values) >= -1
    with caplog.at_level(logging.WARNING):
        stack.check_ndvi_range()
    assert "3 NDVI value(s) outside [-1, 1] after scaling masked as invalid (most on 2023-06-06)" in caplog.text


def test_offset_free_dn_tagged_with_the_offset_are_refused_and_boa_add_offset_reads_them(tmp_path: Path) -> None:
    dates = write_stack(tmp_path, n_dates=2, offset=0)
    _, stack = whole(tmp_path)
    with pytest.raises(SeqpipeError, match=r"T33UVP_\d{8}_B04.tif: \d+% of the NDVI values of [\d-]+ are outside "
                       r"\[-1, 1\] after scaling DN with offset -1000 \(tag BOA_ADD_OFFSET -1000\); the offset is "
                       r"probably wrong for these files"):
        stack.check_ndvi_range()
    layout = dataclasses.replace(SYNTHETIC_LAYOUT, boa_add_offset=0)
    values, stack = whole(tmp_path, layout)
    stack.check_ndvi_range()
    red, nir = dates[0]["red"] / 10000, dates[0]["nir"] / 10000
    np.testing.assert_allclose(values[0], (nir - red) / (nir + red), rtol=1e-5)
    assert json.loads((tmp_path / "scenes.json").read_text())["scenes"][0]["boa_add_offset"] == 0


def test_boa_add_offset_in_params_through_download_preprocess_train_and_predict(tmp_path: Path) -> None:
    stack, work = tmp_path / "stack", tmp_path / "work"
    write_stack(stack, n_dates=14, offset=0)
    work.mkdir()
    overrides = {**tiny_overrides("crop_ndvi"), "models.crop_ndvi.download.source": "local", f"{LOCAL}.path": str(stack)}
    write_params(work / "params.yaml", overrides)
    run(["seqpipe", "download", "crop_ndvi"], work)
    proc = run(["seqpipe", "preprocess", "crop_ndvi"], work, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the offset is probably wrong for these files" in proc.stderr.splitlines()[-1]
    assert not (work / "data/processed/crop_ndvi").exists()

    write_params(work / "params.yaml", {**overrides, f"{LOCAL}.boa_add_offset": 0})
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "crop_ndvi"], work)
    low, high = json.loads((work / "data/processed/crop_ndvi/stats.json").read_text())["ndvi_train_range"]
    assert -1 <= low < high <= 1
    out = work / "next.tif"   # the user's folder has no scenes.json: predict takes the offset from params
    run(["seqpipe", "predict", "crop_ndvi", "--input", str(stack), "--output", str(out)], work)
    with rasterio.open(out) as got:
        forecast = got.read(1)
    assert (np.abs(forecast[forecast != got.nodata]) <= 1.5).all()

    write_params(work / "params.yaml", overrides)   # predict with the offset from the tags: refused, nothing written
    proc = run(["seqpipe", "predict", "crop_ndvi", "--input", str(stack), "--output", str(work / "x.tif")],
               work, check=False)
    assert proc.returncode == 1 and "the offset is probably wrong" in proc.stderr and not (work / "x.tif").exists()


def test_boa_add_offset_out_of_range_is_a_params_error(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", {**tiny_overrides("crop_ndvi"), f"{LOCAL}.boa_add_offset": 20000})
    proc = run(["seqpipe", "download", "crop_ndvi"], tmp_path, check=False)
    assert proc.returncode == 1
    assert f"{LOCAL}.boa_add_offset: must be in -10000..10000, got 20000" in proc.stderr.splitlines()[-1]
