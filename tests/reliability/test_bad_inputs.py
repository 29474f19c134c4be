"""Bad inputs, table-driven: each case builds one real bad file (CSV, GeoTIFF, npy, checkpoint) or
params key, runs the real `seqpipe` CLI, and expects one error line naming the file or the dotted
key, a non-zero exit, no traceback, and no (or an unchanged) stage output. A params section is
checked by the stage that reads it (a bad models.X.train key by `seqpipe train X`), the file's shape
(model names, section names) by every command."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS

from seqpipe.io import read_json, write_json
from tests.conftest import REPO, checkpoint_folder, truncate
from tests.reliability.bad_inputs import (Case, bandwidth_csv, check_refused, copy_raw, fake_checkpoint, g02135_folder,
                                          good, nth_file, rewrite_tif, set_cell)


def _params_only(text: str) -> Callable[[Path, Path], str]:
    return lambda base, work: text


def _ice_forecast_day(edit: Callable[[Path], None]) -> Callable[[Path, Path], str]:
    def setup(base: Path, work: Path) -> str:
        path = nth_file(g02135_folder(base, work), "N_*.tif", 10)
        edit(path)
        return str(path)
    return setup


def _crop_band(band: str, edit: Callable[[Path], None], date_index: int = 3) -> Callable[[Path, Path], str]:
    def setup(base: Path, work: Path) -> str:
        path = nth_file(copy_raw(base, work, "crop_ndvi"), f"*_{band}.tif", date_index)
        edit(path)
        return path.name
    return setup


def _keep_one_date(base: Path, work: Path) -> str:
    raw = copy_raw(base, work, "crop_ndvi")
    index = raw / "scenes.json"
    write_json(index, {"scenes": read_json(index)["scenes"][:1]})
    return str(index)


def _one_g02135_day(base: Path, work: Path) -> str:
    raw = copy_raw(base, work, "ice_forecast")
    for path in sorted(raw.glob("*.tif"))[1:]:
        path.unlink()
    return "data/raw/ice_forecast"


def _all_missing(base: Path, work: Path) -> str:
    folder = g02135_folder(base, work)
    for path in folder.glob("*.tif"):
        rewrite_tif(path, data=lambda a: np.full_like(a, 2550))
    return str(folder)


def _all_nodata_stack(base: Path, work: Path) -> str:
    raw = copy_raw(base, work, "crop_ndvi")
    for path in raw.glob("*_B0[48].tif"):
        rewrite_tif(path, data=np.zeros_like)
    return "data/raw/crop_ndvi: every pixel of every date is nodata or masked"


def _patch_not_geotiff(base: Path, work: Path) -> str:
    path = nth_file(copy_raw(base, work, "ice_type") / "patches", "*.tif")
    path.write_text("not a GeoTIFF\n")
    return str(path)


def _labels_missing_file(base: Path, work: Path) -> str:
    patches = work / "patches"
    raw = good(base, "download", "ice_type")
    shutil.copytree(raw / "patches", patches)
    labels = work / "labels.csv"
    labels.write_text((raw / "labels.csv").read_text() + "absent.tif,thin_ice\n")
    return str(patches / "absent.tif")


def _pair_without_mask(base: Path, work: Path) -> str:
    pairs = work / "pairs"
    pair = pairs / "pair_0000"
    pair.mkdir(parents=True)
    for path in sorted(g02135_folder(base, work).glob("*.tif"))[:2]:
        shutil.copy(path, pair)
    return str(pair / "change_mask.tif")


def _pickled_npy(base: Path, work: Path) -> str:
    raw = copy_raw(base, work, "freq_filter")
    np.save(raw / "signals.npy", np.array([{"payload": 1}], dtype=object), allow_pickle=True)
    return str(raw / "signals.npy")


def _local_folder_readme_only(base: Path, work: Path) -> str:
    """The default local folder (models.bandwidth.download.local.path) as the repository ships it: a README only."""
    folder = work / "data/local/bandwidth"
    folder.mkdir(parents=True)
    shutil.copy(REPO / "data/local/bandwidth/README.md", folder)
    return "data/local/bandwidth: no bandwidth.csv in this folder"


def _processed_bandwidth(text: str) -> Callable[[Path, Path], str]:
    """Good processed bandwidth data, so that the stage reading the bad section is the only thing wrong
    (sections are parsed when a stage reads them: `train` reads models.bandwidth.train)."""
    def setup(base: Path, work: Path) -> str:
        shutil.copytree(good(base, "preprocess", "bandwidth"), work / "data/processed/bandwidth")
        return text
    return setup


def _checkpoint_case(name: str, **fields: object) -> Callable[[Path, Path], str]:
    """Good processed bandwidth data and a fake checkpoint at models/bandwidth/`name`, where
    `checkpoints/` stands for this params set's checkpoint folder."""
    def setup(base: Path, work: Path) -> str:
        shutil.copytree(good(base, "preprocess", "bandwidth"), work / "data/processed/bandwidth")
        folder = work / "models/bandwidth"
        if name.startswith("checkpoints/"):
            folder = checkpoint_folder(work, "bandwidth")
        return str(fake_checkpoint(folder / name.removeprefix("checkpoints/"), **fields))
    return setup


BW = "models.bandwidth"
DL_BW, PRE_BW, TRAIN_BW = ["download", "bandwidth"], ["preprocess", "bandwidth"], ["train", "bandwidth"]
CSV_OUT, MODEL_OUT = "data/processed/bandwidth", "models/bandwidth/model.pt"
CASES = [
    # params.yaml
    Case("params-unknown-key", TRAIN_BW, _processed_bandwidth(
        f"params.yaml: {BW}.train.ephocs: unknown key (did you mean 'epochs'?)"), MODEL_OUT,
        {f"{BW}.train.ephocs": 3}),
    Case("params-wrong-type", TRAIN_BW, _processed_bandwidth(f"params.yaml: {BW}.train.lr: expected a number"),
         MODEL_OUT, {f"{BW}.train.lr": "fast"}),
    Case("params-negative-epochs", TRAIN_BW, _processed_bandwidth(
        f"params.yaml: {BW}.train.epochs: must be >= 1, got -3"), MODEL_OUT, {f"{BW}.train.epochs": -3}),
    Case("params-unknown-model-section", DL_BW,
         _params_only("params.yaml: models.bandwith: unknown key (did you mean 'bandwidth'?)"),
         "data/raw/bandwidth", {"models.bandwith.train.epochs": 1}, slow=True),
    Case("params-unknown-source-kind", DL_BW,
         _params_only(f"{BW}.download.source: must be one of synthetic, local"),
         "data/raw/bandwidth", {f"{BW}.download.source": "ftp"}),
    Case("params-window-longer-than-series", PRE_BW,
         lambda base, work: str(copy_raw(base, work, "bandwidth") / "bandwidth.csv") + ": 400 data rows, need at "
         "least 1034 (models.bandwidth.preprocess.window 1000 + 10 windows per val/test split)", CSV_OUT,
         {f"{BW}.preprocess.window": 1000}),
    Case("cli-unknown-model", ["download", "bandwidht"], _params_only("unknown model 'bandwidht'"),
         "data/raw/bandwidht"),
    Case("local-path-missing", DL_BW, _params_only("no_such.csv: not found (download.local.path)"),
         "data/raw/bandwidth", {f"{BW}.download.source": "local", f"{BW}.download.local.path": "no_such.csv"},
         slow=True),
    Case("local-path-empty", DL_BW, _params_only("download.local.path: empty; set it to your file or folder"),
         "data/raw/bandwidth", {f"{BW}.download.source": "local", f"{BW}.download.local.path": ""}),
    Case("local-default-folder-without-csv", DL_BW, _local_folder_readme_only, "data/raw/bandwidth",
         {f"{BW}.download.source": "local"}),
    # CSV (bandwidth: what `local` copies into data/raw/bandwidth/, read by preprocess)
    Case("csv-empty", PRE_BW, lambda b, w: str(bandwidth_csv(b, w, lambda lines: [])) + ": empty file", CSV_OUT),
    Case("csv-header-only", PRE_BW, lambda b, w: str(bandwidth_csv(b, w, lambda lines: lines[:1])) + ": 0 data rows",
         CSV_OUT),
    Case("csv-missing-target-column", PRE_BW, lambda b, w: str(bandwidth_csv(
        b, w, lambda lines: [",".join(c for i, c in enumerate(line.split(",")) if i != 2) for line in lines]))
        + ": missing column(s) rtt_ms", CSV_OUT),
    Case("csv-unparseable-timestamp", PRE_BW, lambda b, w: str(bandwidth_csv(
        b, w, set_cell("timestamp", 5, "yesterday"))) + ": unparseable timestamp 'yesterday'", CSV_OUT),
    Case("csv-unsorted-timestamps", PRE_BW, lambda b, w: str(bandwidth_csv(
        b, w, lambda lines: lines[:3] + [lines[4], lines[3]] + lines[5:])) + ": timestamps must increase strictly; "
        "out of order at data row 4", CSV_OUT),
    Case("csv-duplicated-timestamps", PRE_BW, lambda b, w: str(bandwidth_csv(
        b, w, lambda lines: lines[:4] + [lines[3]] + lines[5:])) + ": timestamps must increase strictly; "
        "duplicated at data row 4", CSV_OUT),
    Case("csv-nan", PRE_BW, lambda b, w: str(bandwidth_csv(b, w, set_cell("jitter_ms", 7, "nan")))
         + ": column 'jitter_ms' has 1 NaN/inf value(s), first at data row 7", CSV_OUT),
    Case("csv-inf", PRE_BW, lambda b, w: str(bandwidth_csv(b, w, set_cell("throughput_mbps", 9, "inf")))
         + ": column 'throughput_mbps' has 1 NaN/inf value(s), first at data row 9", CSV_OUT),
    Case("csv-non-numeric", PRE_BW, lambda b, w: str(bandwidth_csv(b, w, set_cell("rtt_ms", 2, "12ms")))
         + ": non-numeric value '12ms' in column 'rtt_ms' at data row 2", CSV_OUT),
    # GeoTIFF: crop_ndvi stacks (read by preprocess) and G02135 series (checked by the local download)
    Case("tif-truncated", ["preprocess", "crop_ndvi"], _crop_band("B08", truncate), "data/processed/crop_ndvi"),
    Case("tif-not-a-geotiff", ["download", "ice_forecast"],
         _ice_forecast_day(lambda p: p.write_bytes(b"<html>404 not found</html>\n")), "data/raw/ice_forecast"),
    Case("tif-missing-crs", ["preprocess", "crop_ndvi"], _crop_band("B04", lambda p: rewrite_tif(p, crs=None)),
         "data/processed/crop_ndvi"),
    Case("tif-crs-mismatch-between-dates", ["preprocess", "crop_ndvi"],
         _crop_band("B04", lambda p: rewrite_tif(p, crs=CRS.from_epsg(32634))), "data/processed/crop_ndvi"),
    Case("tif-g02135-wrong-crs", ["download", "ice_forecast"],
         _ice_forecast_day(lambda p: rewrite_tif(p, crs=CRS.from_epsg(3413))), "data/raw/ice_forecast", slow=True),
    Case("tif-shape-mismatch", ["preprocess", "crop_ndvi"],
         _crop_band("B08", lambda p: rewrite_tif(p, width=12, height=12)), "data/processed/crop_ndvi"),
    Case("tif-g02135-shape-mismatch", ["download", "ice_forecast"],
         _ice_forecast_day(lambda p: rewrite_tif(p, width=8)), "data/raw/ice_forecast", slow=True),
    Case("tif-all-nodata-stack", ["preprocess", "crop_ndvi"], _all_nodata_stack, "data/processed/crop_ndvi"),
    Case("tif-g02135-all-missing", ["download", "ice_forecast"], _all_missing, "data/raw/ice_forecast", slow=True),
    Case("tif-wrong-dtype", ["preprocess", "crop_ndvi"],
         _crop_band("B04", lambda p: rewrite_tif(p, dtype="float32", data=lambda a: a / 10000.0)),
         "data/processed/crop_ndvi"),
    Case("tif-g02135-wrong-dtype", ["download", "ice_forecast"],
         _ice_forecast_day(lambda p: rewrite_tif(p, dtype="float32")), "data/raw/ice_forecast", slow=True),
    Case("tif-single-date-stack", ["preprocess", "crop_ndvi"], _keep_one_date, "data/processed/crop_ndvi"),
    Case("tif-single-day-series", ["preprocess", "ice_forecast"], _one_g02135_day, "data/processed/ice_forecast",
         slow=True),
    Case("tif-patch-not-a-geotiff", ["preprocess", "ice_type"], _patch_not_geotiff, "data/processed/ice_type",
         slow=True),
    Case("labels-list-missing-patch", ["download", "ice_type"], _labels_missing_file, "data/raw/ice_type",
         {"models.ice_type.download.source": "local", "models.ice_type.download.local.patches": "patches",
          "models.ice_type.download.local.labels": "labels.csv"}, slow=True),
    Case("pair-without-change-mask", ["download", "ice_change"], _pair_without_mask, "data/raw/ice_change",
         {"models.ice_change.download.source": "local", "models.ice_change.download.local.path": "pairs"},
         slow=True),
    Case("npy-with-pickled-objects", ["preprocess", "freq_filter"], _pickled_npy, "data/processed/freq_filter",
         slow=True),
    # checkpoints
    Case("checkpoint-from-another-model", ["train", "bandwidth"],
         _checkpoint_case("checkpoints/last.pt", model="freq_filter"), "models/bandwidth/model.pt"),
    Case("checkpoint-from-other-params", ["train", "bandwidth", "--resume"],
         _checkpoint_case("checkpoints/last.pt"), "models/bandwidth/model.pt"),
    Case("model-file-from-another-model", ["evaluate", "bandwidth"], _checkpoint_case("model.pt", model="freq_filter"),
         "metrics/bandwidth.json", slow=True),
]
LOCAL_G02135 = {"models.ice_forecast.download.source": "local", "models.ice_forecast.download.local.path": "g02135"}
for _case in CASES:
    if _case.command == ["download", "ice_forecast"]:
        _case.params = {**LOCAL_G02135, **_case.params}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES])
def test_bad_input_is_one_error_line(case: Case, base: Path, tmp_path: Path) -> None:
    check_refused(case, base, tmp_path)
