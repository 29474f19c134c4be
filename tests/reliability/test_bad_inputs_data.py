"""Bad values inside data files, table-driven like test_bad_inputs.py: a file's own nodata, numbers
that overflow, NDVI out of [-1, 1] from a wrong DN offset, scale tags that cannot scale, and headers
claiming rasters too large to read. Each case runs the real CLI on real files and expects one error
line naming the file, a non-zero exit, no traceback and no (or an unchanged) output."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio

from seqpipe.data import seaice
from tests.conftest import run
from tests.reliability.bad_inputs import (Case, bandwidth_csv, check_refused, copy_raw, g02135_folder, good,
                                          nth_file, rewrite_tif, set_cell)

HUGE = 10**6   # pixels per side claimed by a header of a few hundred bytes


def huge_tif(path: Path, like: Path) -> None:
    """Replace `path` with a sparse GeoTIFF of HUGE x HUGE pixels (one strip, no data written: ~400 bytes)
    carrying the CRS, origin, pixel size, data type, band count and tags of `like`."""
    with rasterio.open(like) as src:
        profile, tags = {**src.profile}, src.tags()
    profile.update(width=HUGE, height=HUGE, tiled=False, blockysize=HUGE, sparse_ok=True, compress="deflate")
    for key in ("blockxsize", "interleave"):
        profile.pop(key, None)
    path.unlink(missing_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.update_tags(**tags)
    assert path.stat().st_size < 64_000


def trained(base: Path, model: str) -> Path:
    """models/<model>/model.pt of `base`, trained (tiny params) the first time."""
    model_file = base / "models" / model / "model.pt"
    if not model_file.exists():
        good(base, "preprocess", model)
        run(["seqpipe", "train", model], base)
    return model_file


def _with_model(model: str, setup: Callable[[Path, Path], str]) -> Callable[[Path, Path], str]:
    """The trained model copied into the case's folder, then `setup`."""
    def wrapped(base: Path, work: Path) -> str:
        (work / "models" / model).mkdir(parents=True)
        shutil.copy(trained(base, model), work / "models" / model / "model.pt")
        return setup(base, work)
    return wrapped


def _crop_bands(edit: Callable[[Path], None], pattern: str = "*_B0[48].tif") -> Callable[[Path, Path], str]:
    """Every red and NIR file (or those matching `pattern`) of good crop_ndvi raw data, edited."""
    def setup(base: Path, work: Path) -> str:
        raw = copy_raw(base, work, "crop_ndvi")
        paths = sorted(raw.glob(pattern))
        for path in paths:
            edit(path)
        return paths[0].name
    return setup


def _retag(path: Path, **tags: str) -> None:
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(**tags)


def _declared_nodata_everywhere(base: Path, work: Path) -> str:
    """Case 2: red and NIR declare nodata=12345 and hold only it (today: NDVI 0.0 on every date)."""
    _crop_bands(lambda p: rewrite_tif(p, nodata=12345, data=lambda a: np.full_like(a, 12345)))(base, work)
    return "data/raw/crop_ndvi: every pixel of every date is nodata or masked"


def _offset_already_removed(base: Path, work: Path) -> str:
    """Case 4: DN written without the +1000 offset while the tags still say baseline 05.09, offset -1000."""
    _crop_bands(lambda p: rewrite_tif(p, data=lambda a: np.where(a > 1000, a - 1000, a)))(base, work)
    return "the offset is probably wrong for these files (DN already offset-free?): set " \
           "models.crop_ndvi.download.local.boa_add_offset"


def _huge_crop_stack(base: Path, work: Path) -> str:
    raw = copy_raw(base, work, "crop_ndvi")
    for path in sorted(raw.glob("*.tif")):
        huge_tif(path, path)
    return "over the memory budget of 1.0 GiB; crop the file or raise models.crop_ndvi.preprocess.split_block_px"


def _huge_g02135_pair(base: Path, work: Path) -> str:
    """Case 12: --before is a header claiming 10^6 x 10^6 pixels on the G02135 grid."""
    days = sorted(g02135_folder(base, work).glob("N_*.tif"))
    huge_tif(work / "before.tif", days[0])
    shutil.copy(days[1], work / "after.tif")
    return "before.tif: 1000000x1000000 pixels x 1 band(s) of uint16 to read whole is 1.8 TiB, over the memory budget"


def _huge_patch(base: Path, work: Path) -> str:
    """Case 12: --input is a patch header claiming 10^6 x 10^6 pixels."""
    like = nth_file(good(base, "download", "ice_type") / "patches", "*.tif")
    huge_tif(work / "huge.tif", like)
    return "huge.tif: 1000000x1000000 pixels x "


def _huge_g02135_day(base: Path, work: Path) -> str:
    raw = copy_raw(base, work, "ice_forecast")
    path = nth_file(raw, "N_*.tif", 5)
    huge_tif(path, path)
    return f"{path}: 1000000x1000000 pixels"


def _g02135_beyond_grid(base: Path, work: Path) -> str:
    path = nth_file(g02135_folder(base, work), "N_*.tif", 10)
    rewrite_tif(path, width=400, height=500, transform=seaice.window_transform(0, 0),
                data=lambda a: np.pad(a, ((0, 0), (0, 500), (0, 400)), mode="edge"))
    return f"{path}: 400x500 pixels from row 0, column 0 reach beyond the 304x448 G02135 grid of EPSG:3411"


def _g02135_all_declared_nodata(base: Path, work: Path) -> str:
    """Every day holds only concentration 300, which each file declares as its nodata (today: 30% ice)."""
    folder = g02135_folder(base, work)
    for path in folder.glob("*.tif"):
        rewrite_tif(path, nodata=300, data=lambda a: np.full_like(a, 300))
    return f"{folder}: no file holds a concentration value"


def _patch_with_nodata(base: Path, work: Path) -> str:
    path = nth_file(copy_raw(base, work, "ice_type") / "patches", "*.tif", 2)
    with rasterio.open(path) as src:
        value = float(src.read(1)[3, 4])
    rewrite_tif(path, nodata=value)
    return f"{path}: "


def _mask_nodata_everywhere(base: Path, work: Path) -> str:
    """ice_change: a change mask whose every pixel is its own nodata: nothing left to learn from."""
    raw = copy_raw(base, work, "ice_change")
    for mask in raw.glob("*/change_mask.tif"):
        rewrite_tif(mask, nodata=1, data=lambda a: np.ones_like(a))
    return "data/raw/ice_change: no pixel of the train split is evaluated"


def _csv(column: str, row: int, value: str, expected: str) -> Callable[[Path, Path], str]:
    return lambda base, work: f"{bandwidth_csv(base, work, set_cell(column, row, value))}: {expected}"


PRE_CROP, CROP_OUT = ["preprocess", "crop_ndvi"], "data/processed/crop_ndvi"
PRE_BW, BW_OUT = ["preprocess", "bandwidth"], "data/processed/bandwidth"
LOCAL_G02135 = {"models.ice_forecast.download.source": "local", "models.ice_forecast.download.local.path": "g02135"}
CASES = [
    # a file's own nodata (case 2, and the same class in G02135 and ice_type patches)
    Case("tif-declared-nodata-everywhere", PRE_CROP, _declared_nodata_everywhere, CROP_OUT),
    Case("tif-g02135-all-declared-nodata", ["download", "ice_forecast"], _g02135_all_declared_nodata,
         "data/raw/ice_forecast", LOCAL_G02135),
    Case("tif-patch-with-nodata-pixels", ["preprocess", "ice_type"], _patch_with_nodata, "data/processed/ice_type"),
    Case("tif-change-masks-all-nodata", ["preprocess", "ice_change"], _mask_nodata_everywhere,
         "data/processed/ice_change"),
    # numbers that overflow (case 3)
    Case("csv-value-overflows-float32", PRE_BW, _csv(
        "throughput_mbps", 9, "1e308", "value 1e+308 in column 'throughput_mbps' at data row 9 overflows float32"),
        BW_OUT),
    Case("csv-negative-value-overflows-float32", PRE_BW, _csv(
        "rtt_ms", 30, "-4e38", "value -4e+38 in column 'rtt_ms' at data row 30 overflows float32"), BW_OUT,
        slow=True),
    # NDVI out of [-1, 1] from a wrong offset (case 4), and scale tags that cannot scale
    Case("tif-offset-already-removed", PRE_CROP, _offset_already_removed, CROP_OUT),
    Case("tif-quantification-zero", PRE_CROP, lambda b, w: _crop_bands(
        lambda p: _retag(p, BOA_QUANTIFICATION_VALUE="0"), "*_20230401_B04.tif")(b, w)
        + ": scale tags give offset -1000 and quantification 0", CROP_OUT),
    # headers claiming rasters too large to read (case 12, and the preprocess readers)
    Case("tif-huge-header-predict-ice_change",
         ["predict", "ice_change", "--before", "before.tif", "--after", "after.tif", "--output", "change.tif"],
         _with_model("ice_change", _huge_g02135_pair), "change.tif"),
    Case("tif-huge-header-predict-ice_type", ["predict", "ice_type", "--input", "huge.tif", "--output", "types.csv"],
         _with_model("ice_type", _huge_patch), "types.csv"),
    Case("tif-huge-header-preprocess-ice_forecast", ["preprocess", "ice_forecast"], _huge_g02135_day,
         "data/processed/ice_forecast", slow=True),
    Case("tif-huge-header-crop-stack", PRE_CROP, _huge_crop_stack, CROP_OUT),
    Case("tif-g02135-beyond-its-grid", ["download", "ice_forecast"], _g02135_beyond_grid, "data/raw/ice_forecast",
         LOCAL_G02135),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES])
def test_bad_value_is_one_error_line(case: Case, base: Path, tmp_path: Path) -> None:
    check_refused(case, base, tmp_path)
