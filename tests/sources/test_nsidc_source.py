"""Source `nsidc` against the real local HTTP server serving an NSIDC G02135 folder tree (fixture files from
the synthetic G02135 writer; January and February in v3.0, later months in v4.0, one day in both, one day
absent): version choice from the index pages, missing days, crop, retries, and both sea-ice models."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from seqpipe import pipelines
from seqpipe.cli import main
from seqpipe.data import seaice
from seqpipe.io import sha256_file
from seqpipe.params import load_params
from seqpipe.pipelines.ice_change.pairs import MASK_NAME, NOT_EVALUATED
from seqpipe.sources.nsidc import MONTHS
from seqpipe.sources.nsidc_synthetic import IceField, SeaIceSyntheticParams
from seqpipe.stages import download, preprocess
from tests.conftest import error_lines, run, tiny_overrides, write_params
from tests.servers import FileServer

START, DAYS = dt.date(2023, 1, 1), 100           # 2023-01-01 .. 2023-04-10
ABSENT, BOTH = dt.date(2023, 2, 10), dt.date(2023, 2, 20)
CROP = {"row_off": 2, "col_off": 2, "height": 16, "width": 16}


def month_dir(root: Path, day: dt.date) -> Path:
    return root / "NOAA/G02135/north/daily/geotiff" / f"{day:%Y}" / f"{day:%m}_{MONTHS[day.month - 1]}"


@pytest.fixture(scope="module")
def nsidc_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 x 20 G02135 files for DAYS days laid out as on noaadata.apps.nsidc.org (only read: shared)."""
    p = SeaIceSyntheticParams(start=START.isoformat(), n_days=DAYS, height=20, width=20, row_off=224, col_off=144,
                              edge_radius_px=6.0, seasonal_amplitude_px=2.0, drift_px_per_day=0.6,
                              drift_memory_days=30.0, noise_std=0.05, missing_day_fraction=0.0,
                              pole_hole_radius_km=94.0)
    field, root = IceField(p, 3), tmp_path_factory.mktemp("nsidc")
    for i in range(DAYS):
        day = field.date(i)
        if day == ABSENT:
            continue
        folder = month_dir(root, day)
        folder.mkdir(parents=True, exist_ok=True)
        version = "3.0" if day.month <= 2 else "4.0"
        seaice.write_geotiff(folder / f"N_{day:%Y%m%d}_concentration_v{version}.tif", field.observe(i), field.grid)
        if day == BOTH:   # a v4.0 file beside the v3.0 one, with other content: v4.0 must win
            seaice.write_geotiff(folder / f"N_{day:%Y%m%d}_concentration_v4.0.tif", field.observe(i + 1), field.grid)
    return root


def nsidc_params(model: str, url: str, **changes: object) -> dict:
    section = {"base_url": f"{url}/NOAA/G02135", "hemisphere": "north", "start": START.isoformat(),
               "end": (START + dt.timedelta(days=DAYS - 1)).isoformat(), "max_missing_days": 1, "crop": CROP,
               "timeout_s": 5.0, "retries": 1, **changes}
    return {f"models.{model}.download.source": "nsidc", f"models.{model}.download.nsidc": section}


def test_nsidc_download_picks_versions_records_gaps_crops_and_retries(workdir: Path, nsidc_tree: Path) -> None:
    both = f"N_{BOTH:%Y%m%d}_concentration_v4.0.tif"
    late = f"N_{START + dt.timedelta(days=DAYS - 1):%Y%m%d}_concentration_v4.0.tif"
    with FileServer(nsidc_tree) as server:
        server.fail("/NOAA/G02135/north/daily/geotiff/2023/03_Mar/", "500")                # index page: retried
        server.fail(f"/NOAA/G02135/north/daily/geotiff/2023/04_Apr/{late}", "truncate")   # file: retried
        write_params(workdir / "params.yaml", {**tiny_overrides(), **nsidc_params("ice_forecast", server.url)})
        assert main(["download", "ice_forecast"]) == 0
    gets = server.paths_requested()
    assert gets.count("/NOAA/G02135/north/daily/geotiff/2023/03_Mar/") == 2 and sum(late in g for g in gets) == 2
    raw = workdir / "data" / "raw" / "ice_forecast"
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["source"] == "nsidc" and manifest["synthetic"] is False
    assert manifest["missing_days"] == [ABSENT.isoformat()] and manifest["crop"] == CROP
    assert len(manifest["downloaded"]) == DAYS - 1 == len(manifest["files"])
    versions = {name: entry["version"] for name, entry in manifest["downloaded"].items()}
    assert versions[both] == "4.0" and f"N_{BOTH:%Y%m%d}_concentration_v3.0.tif" not in versions
    assert versions[f"N_{START:%Y%m%d}_concentration_v3.0.tif"] == "3.0"
    served = month_dir(nsidc_tree, BOTH) / both
    assert manifest["downloaded"][both]["sha256"] == sha256_file(served)
    with rasterio.open(served) as src, rasterio.open(raw / both) as out:
        assert out.shape == (16, 16) and out.crs == src.crs
        assert out.transform == src.transform @ src.transform.translation(2, 2)
        np.testing.assert_array_equal(out.read(1), src.read(1)[2:18, 2:18])
    assert manifest["files"][both] == sha256_file(raw / both)
    assert not [p for p in raw.parent.iterdir() if p.name.startswith(".")]   # no temp folder, no index page


@pytest.mark.slow
def test_ice_forecast_from_nsidc_end_to_end_through_dvc_repro(repo_copy: Path, nsidc_tree: Path) -> None:
    with FileServer(nsidc_tree) as server:
        write_params(repo_copy / "params.yaml", {**tiny_overrides(), **nsidc_params("ice_forecast", server.url)})
        run(["dvc", "repro", "evaluate-ice_forecast"], repo_copy)
    manifest = json.loads((repo_copy / "data" / "raw" / "ice_forecast" / "manifest.json").read_text())
    assert manifest["source"] == "nsidc" and len(manifest["files"]) == DAYS - 1
    stats = json.loads((repo_copy / "data" / "processed" / "ice_forecast" / "stats.json").read_text())
    assert stats["provenance"] == {"source": "nsidc", "synthetic": False}
    metrics = json.loads((repo_copy / "metrics" / "ice_forecast.json").read_text())
    assert "rmse" in metrics["test"] and "persistence" in metrics["baselines"]


def test_ice_change_from_nsidc_through_download_and_preprocess(workdir: Path, nsidc_tree: Path) -> None:
    with FileServer(nsidc_tree) as server:
        write_params(workdir / "params.yaml", {**tiny_overrides(), **nsidc_params(
            "ice_change", server.url, start="2023-02-01", end="2023-03-15", gap_days=[3, 7], stride_days=2)})
        params = load_params(workdir / "params.yaml")
        manifest = download.run(pipelines.get("ice_change"), params)
    stats = preprocess.run(pipelines.get("ice_change"), params)
    raw = workdir / "data" / "raw" / "ice_change"
    pairs = sorted(p for p in raw.iterdir() if p.is_dir())
    assert [p.name for p in raw.iterdir() if p.name.startswith(".")] == []   # the day folder is gone
    firsts = range(0, 43, 2)
    expected = sum(1 for o in firsts for g in (3, 7) if o + g < 43 and ABSENT not in
                   (dt.date(2023, 2, 1) + dt.timedelta(days=o), dt.date(2023, 2, 1) + dt.timedelta(days=o + g)))
    assert manifest["pairs"] == len(pairs) == expected and manifest["missing_days"] == [ABSENT.isoformat()]
    assert stats["pairs"] == len(pairs) and stats["provenance"] == {"source": "nsidc", "synthetic": False}
    for pair in pairs[:3]:
        before, after = sorted(pair.glob("N_*.tif"))
        (c1, _), (c2, _) = (seaice.decode(seaice.read_raw(f)[0]) for f in (before, after))
        with rasterio.open(pair / MASK_NAME) as src:
            mask = src.read(1)
        seen = np.isfinite(c1) & np.isfinite(c2)
        assert (mask[~seen] == NOT_EVALUATED).all() and (mask[~seen].size > 0)
        np.testing.assert_array_equal(mask[seen], (c1[seen] >= 0.15) != (c2[seen] >= 0.15))


def test_too_many_missing_days_fail_in_one_line(workdir: Path, nsidc_tree: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    with FileServer(nsidc_tree) as server:   # the files end on 10 April; May has no folder at all (404)
        write_params(workdir / "params.yaml", {**tiny_overrides(), **nsidc_params(
            "ice_forecast", server.url, start="2023-03-25", end="2023-05-02")})
        assert main(["download", "ice_forecast"]) == 1
    errors = error_lines(capsys.readouterr().err)
    assert errors == [f"seqpipe: error: {server.url}/NOAA/G02135/north/daily/geotiff/2023/04_Apr/: 22 of 39 days "
                      "from 2023-03-25 to 2023-05-02 are not on the server, more than "
                      "download.nsidc.max_missing_days=1 "
                      "(2023-04-11, 2023-04-12, 2023-04-13, 2023-04-14, 2023-04-15, ...)"]
    assert not [p for p in server.paths_requested() if p.endswith(".tif")]   # decided from the indexes alone
    raw = workdir / "data" / "raw"
    assert not raw.exists() or not any(raw.iterdir())


def test_a_failing_index_page_names_its_url(workdir: Path, nsidc_tree: Path, capsys: pytest.CaptureFixture) -> None:
    with FileServer(nsidc_tree) as server:
        server.fail("/NOAA/G02135/north/daily/geotiff/2023/01_Jan/", "500", "500")
        write_params(workdir / "params.yaml", {**tiny_overrides(), **nsidc_params("ice_forecast", server.url)})
        assert main(["download", "ice_forecast"]) == 1
    errors = error_lines(capsys.readouterr().err)
    assert errors == [f"seqpipe: error: {server.url}/NOAA/G02135/north/daily/geotiff/2023/01_Jan/: "
                      "HTTP 500 Internal Server Error (2 attempts)"]
    raw = workdir / "data" / "raw"
    assert not raw.exists() or not any(raw.iterdir())


def test_southern_files_are_found_and_checked_on_the_southern_grid(workdir: Path, tmp_path: Path) -> None:
    from affine import Affine
    from rasterio.crs import CRS

    south = seaice.Grid(CRS.from_epsg(3412), Affine(25000, 0, -3_950_000 + 150 * 25000, 0, -25000,
                                                    4_350_000 - 160 * 25000), 16, 16)
    folder = tmp_path / "srv" / "G02135/south/daily/geotiff/2023/09_Sep"
    folder.mkdir(parents=True)
    codes = np.full((16, 16), 500, np.uint16)
    for day in (1, 2, 3):
        seaice.write_geotiff(folder / f"S_202309{day:02d}_concentration_v4.0.tif", codes, south)
    with FileServer(tmp_path / "srv") as server:
        write_params(workdir / "params.yaml", {**tiny_overrides(), **nsidc_params(
            "ice_forecast", server.url, base_url=f"{server.url}/G02135", hemisphere="south", start="2023-09-01",
            end="2023-09-03", crop=None)})
        assert main(["download", "ice_forecast"]) == 0
    manifest = json.loads((workdir / "data/raw/ice_forecast/manifest.json").read_text())
    assert sorted(manifest["files"]) == [f"S_202309{d:02d}_concentration_v4.0.tif" for d in (1, 2, 3)]
    assert manifest["hemisphere"] == "south" and manifest["missing_days"] == []
