"""ice_forecast on sea ice (G02135): flag decoding, grid checks, deterministic synthetic files, the pipeline
end to end on tiny 16x16 GeoTIFFs, and a forecast that keeps the input's CRS and transform."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import Affine

from seqpipe import layout, pipelines
from seqpipe.cli import main
from seqpipe.data import seaice
from seqpipe.errors import SeqpipeError
from seqpipe.networks.convlstm import ConvLSTMForecaster
from seqpipe.params import Params, replace
from seqpipe.pipelines.ice_forecast.download import DownloadParams
from seqpipe.pipelines.ice_forecast.preprocess import PreprocessParams
from seqpipe.sources.local import LocalParams
from seqpipe.sources.nsidc_synthetic import SeaIceSyntheticParams, write_series
from seqpipe.stages.download import run_source

if TYPE_CHECKING:
    from tests.pipelines.conftest import G02135

SPEC = pipelines.get("ice_forecast")


def test_epsg_3411_is_the_hughes_polar_stereographic_grid() -> None:
    crs = seaice.crs()
    assert crs.to_epsg() == 3411 and "Hughes 1980" in crs.to_wkt()
    assert crs.to_dict()["a"] == 6378273 and crs.to_dict()["lat_ts"] == 70
    assert seaice.window_transform(0, 0) == Affine(25000, 0, -3850000, 0, -25000, 5850000)


def test_flags_decode_to_nan_and_land_mask() -> None:
    raw = np.array([[0, 150, 1000, seaice.POLE_HOLE, seaice.COAST, seaice.LAND, seaice.MISSING]], np.uint16)
    concentration, ocean = seaice.decode(raw)
    np.testing.assert_allclose(concentration[0, :3], [0.0, 0.15, 1.0])
    assert np.isnan(concentration[0, 3:]).all()
    assert ocean.tolist() == [[True, True, True, True, False, False, True]]


def test_series_fills_missing_days_pole_hole_and_land(tmp_path: Path, g02135: type[G02135]) -> None:
    first, third = g02135.codes(0), g02135.codes(1)
    first[10, 10], third[10, 10] = 200, 600
    third[12, 12] = seaice.MISSING
    g02135.write(tmp_path / seaice.file_name(dt.date(2020, 1, 1)), first)
    g02135.write(tmp_path / seaice.file_name(dt.date(2020, 1, 3)), third)    # 2 January is missing
    series = seaice.read_series(tmp_path)
    assert series.present.tolist() == [True, False, True] and series.dates[1] == dt.date(2020, 1, 2)
    concentration, observed, ocean, flags = seaice.series_arrays(series)
    assert concentration[1, 10, 10] == pytest.approx(0.4)
    assert concentration[2, 12, 12] == pytest.approx(first[12, 12] / 1000)
    assert (concentration[:, 7:9, 7:9] == 1.0).all() and not observed[:, 7:9, 7:9].any()
    assert not ocean[:, :3].any() and (concentration[:, :, :3] == 0).all()
    assert flags[0, 0] == seaice.LAND and flags[0, 2] == seaice.COAST and flags[8, 8] == seaice.POLE_HOLE
    assert not observed[1].any() and not observed[2, 12, 12] and observed[2, 10, 10]


@pytest.mark.parametrize("case, message", [
    ("crs", "CRS is EPSG:3413"), ("shape", "shape 16x15 != 16x16"), ("grid", "not on the NSIDC 25 km"),
    ("value", "neither concentration"), ("dtype", "expected 1 uint16 band"), ("name", "not a G02135 name")])
def test_bad_files_name_the_file_in_one_line(tmp_path: Path, g02135: type[G02135], case: str, message: str) -> None:
    g02135.write(tmp_path / seaice.file_name(dt.date(2020, 1, 1)), g02135.codes(0))
    bad = tmp_path / seaice.file_name(dt.date(2020, 1, 2))
    codes = g02135.codes(1)
    if case == "crs":
        g02135.write(bad, codes, crs=CRS.from_epsg(3413))
    elif case == "shape":
        g02135.write(bad, codes[:, :15])
    elif case == "grid":
        g02135.write(bad, codes, transform=g02135.transform @ Affine.translation(0.5, 0))
    elif case == "value":
        codes[3, 3] = 1500
        g02135.write(bad, codes)
    elif case == "dtype":
        g02135.write(bad, codes, dtype="float32")
    else:
        bad = g02135.write(tmp_path / "ice.tif", codes)
    with pytest.raises(SeqpipeError) as info:
        seaice.read_series(tmp_path)
    assert str(bad) in str(info.value) and message in str(info.value) and "\n" not in str(info.value)


def test_synthetic_files_are_real_g02135_and_byte_deterministic(tmp_path: Path) -> None:
    p = SeaIceSyntheticParams(start="2020-02-27", n_days=5, height=16, width=16, row_off=226, col_off=146,
                              edge_radius_px=6.0, seasonal_amplitude_px=2.0, drift_px_per_day=0.5,
                              drift_memory_days=20.0, noise_std=0.05, missing_day_fraction=0.0,
                              pole_hole_radius_km=60.0)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_series(p, 7, tmp_path / folder)
    names = sorted(f.name for f in (tmp_path / "a").iterdir())
    assert names[0] == "N_20200227_concentration_v3.0.tif" and "N_20200229_concentration_v3.0.tif" in names
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    with rasterio.open(tmp_path / "a" / names[0]) as src:
        assert src.crs.to_epsg() == 3411 and src.dtypes == ("uint16",) and src.shape == (16, 16)
        assert src.transform == Affine(25000, 0, -200000, 0, -25000, 200000)
        values = src.read(1)
    assert set(np.unique(values[values > 1000])) <= set(seaice.FLAGS) and (values == seaice.POLE_HOLE).any()


def test_network_forward_backward_on_any_grid() -> None:
    torch.manual_seed(0)
    forecaster = ConvLSTMForecaster(hidden_channels=4, kernel_size=3, patch=2, horizon=3)
    out = forecaster(torch.rand(2, 5, 8, 12))
    assert out.shape == (2, 3, 8, 12)
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in forecaster.parameters())


def test_pipeline_and_predict_keep_the_grid(tiny_params: Params, workdir: Path,
                                           run_tiny_pipeline: Callable[[str], dict],
                                           capsys: pytest.CaptureFixture) -> None:
    metrics = run_tiny_pipeline("ice_forecast")
    horizon = tiny_params.section("ice_forecast", "preprocess", PreprocessParams).horizon_days
    scores = ("rmse", "mae", "iiee", "iiee_over", "iiee_under", "edge_accuracy", "iou", "ssim")
    keys = {*scores, *(f"{s}_lead_{k}" for s in scores for k in range(1, horizon + 1))}
    assert keys <= set(metrics["test"])
    assert set(metrics["baselines"]) == {"persistence", "climatology"}
    assert all(set(b) == set(metrics["test"]) for b in metrics["baselines"].values())
    for section in (metrics["test"], *metrics["baselines"].values()):
        assert all(np.isfinite(section[k]) for k in keys)
        parts = [section[f"iiee_over_lead_{k}"] + section[f"iiee_under_lead_{k}"] for k in range(1, horizon + 1)]
        assert [section[f"iiee_lead_{k}"] for k in range(1, horizon + 1)] == pytest.approx(parts)
    assert metrics["cell_area_km2"] == 2500.0                # 25 km pixels, block means of 2 x 2
    assert set(metrics["beats_baselines_every_lead"]) == {"rmse", "iiee"}
    head = json.loads(layout.metrics_file("ice_forecast").read_text())
    assert all(set(section) == {"rmse", "mae", "iiee"} for section in (head["test"], *head["baselines"].values()))
    plots = layout.eval_plots_dir("ice_forecast")
    assert (plots / "forecast_vs_truth.png").exists() and (plots / "edge_by_lead.png").exists()
    header = (plots / "edge_by_lead.csv").read_text().splitlines()[0].split(",")
    assert header == ["lead_day", *(f"{name}_{s}" for s in ("iiee", "iou", "ssim")
                                    for name in ("model", "persistence", "climatology"))]
    raw = layout.raw_dir("ice_forecast")
    out = workdir / "forecast.tif"
    assert main(["predict", "ice_forecast", "--input", str(raw), "--output", str(out)]) == 0
    last = sorted(raw.glob("N_*.tif"))[-1]
    with rasterio.open(last) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform and dst.shape == src.shape
        assert dst.count == horizon and dst.dtypes[0] == "uint16"
        flagged = np.isin(src.read(1), (seaice.POLE_HOLE, seaice.COAST, seaice.LAND))
        assert (dst.read(1)[flagged] == src.read(1)[flagged]).all()
        assert (dst.read_masks(1)[flagged] == 0).all() and (dst.read_masks(1)[~flagged] == 255).all()
        assert dst.read()[:, ~flagged].max() <= 1000
    empty = workdir / "empty"
    empty.mkdir()
    assert main(["predict", "ice_forecast", "--input", str(empty), "--output", str(workdir / "x.tif")]) == 1
    assert "no G02135 concentration GeoTIFFs" in capsys.readouterr().err
    assert not (workdir / "x.tif").exists()


def test_local_source_checks_every_file_and_leaves_nothing_on_error(tiny_params: Params, workdir: Path,
                                                                     g02135: type[G02135]) -> None:
    folder = workdir / "downloads"
    folder.mkdir()
    for day in (1, 2, 3):
        g02135.write(folder / seaice.file_name(dt.date(2021, 3, day)), g02135.codes(day))
    sources = SPEC.stage("download").SOURCES
    local = replace(tiny_params.section("ice_forecast", "download", DownloadParams), source="local",
                    local=LocalParams(path=str(folder)))
    out = workdir / "raw"
    manifest = run_source("local", sources, local, 0, out)
    assert manifest["synthetic"] is False and len(manifest["files"]) == 3
    g02135.write(folder / seaice.file_name(dt.date(2021, 3, 4)), g02135.codes(4), crs=CRS.from_epsg(3413))
    with pytest.raises(SeqpipeError, match="N_20210304_concentration_v3.0.tif: CRS is EPSG:3413"):
        run_source("local", sources, local, 0, workdir / "raw2")
    assert not (workdir / "raw2").exists()


def test_fill_in_time_interpolates_each_gap_linearly_and_holds_the_ends() -> None:
    """Per pixel: linear between the nearest valid steps, the nearest value at the ends, 0 if never valid,
    valid values untouched (the vectorised fill against np.interp on every column)."""
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 1, (40, 6, 5)).astype(np.float32)
    values[rng.random(values.shape) < 0.4] = np.nan
    values[:, 0, 0] = np.nan                      # never observed
    values[:, 1, 1] = np.inf                      # never finite either
    values[1:, 2, 2] = np.nan                     # observed once, at the start
    filled = seaice.fill_in_time(values)
    assert filled.dtype == np.float32 and filled.shape == values.shape
    t = np.arange(len(values))
    for r, c in np.ndindex(values.shape[1:]):
        column, ok = values[:, r, c], np.isfinite(values[:, r, c])
        want = np.interp(t, t[ok], column[ok]) if ok.any() else np.zeros(len(t))
        assert np.allclose(filled[:, r, c], want, atol=1e-6), (r, c)
        assert (filled[ok, r, c] == column[ok]).all()
