"""ice_forecast preprocess (issue 28): concentration stored once as float16, and the maps computed a band of
rows at a time into memory-mapped .npy files, byte for byte what the whole series computed at once gives."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from seqpipe.data import seaice
from seqpipe.data.series import load_split
from seqpipe.pipelines.ice_forecast.preprocess import PreprocessParams, coarse_maps, preprocess, write_maps

if TYPE_CHECKING:
    from tests.pipelines.conftest import G02135


def _series(days: int = 40, height: int = 13, width: int = 10, seed: int = 0) -> seaice.Series:
    """Random G02135 codes with land, coast, a pole hole, missing pixels and missing days (the first one
    too, as predict's last_days can give), on a grid whose sides are no multiple of the block sizes."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1001, (days, height, width)).astype(np.uint16)
    codes[:, :, :2], codes[:, :, 2] = seaice.LAND, seaice.COAST
    codes[:, 5:7, 5:7] = seaice.POLE_HOLE
    codes[rng.random(codes.shape) < 0.1] = seaice.MISSING
    codes[::3, 4, 2] = seaice.MISSING                            # coast on the other days: not ocean
    codes[:, 9, 8] = seaice.MISSING                              # an ocean pixel never seen
    present = rng.random(days) > 0.2
    present[[0, 1, 17, 18, 19]] = False                          # three days in a row, and the first two
    present[-1] = True
    grid = seaice.Grid(seaice.crs(), seaice.window_transform(200, 100), width, height)
    return seaice.Series(Path("synthetic"), dt.date(2020, 1, 1), present, codes[present], grid)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("factor", [1, 2, 3, 5])
@pytest.mark.parametrize("band_cells", [1, 900, 10**9])   # one coarse row a band, a few rows, the whole grid
def test_maps_written_by_bands_equal_the_whole_computed_at_once(tmp_path: Path, factor: int,
                                                                 band_cells: int) -> None:
    series = _series()
    whole = coarse_maps(series, factor)
    ocean, records = write_maps(series, factor, tmp_path, band_cells=band_cells)
    expected = {"concentration": whole["concentration"].astype(np.float16), "observed": whole["observed"]}
    for name, array in expected.items():
        path = tmp_path / f"{name}.npy"
        assert path.read_bytes() == _npy_bytes(array), name
        assert records[name] == {"shape": list(array.shape), "dtype": str(array.dtype),
                                 "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    np.testing.assert_array_equal(ocean, whole["ocean"])
    assert whole["concentration"].shape == (40, 13 // factor, 10 // factor)
    assert whole["observed"].any() and not whole["observed"].all()


def test_a_band_of_native_rows_is_those_rows_of_the_whole() -> None:
    series = _series()
    whole = seaice.series_arrays(series)
    band = seaice.series_arrays(series, slice(4, 9))
    for full, part in zip(whole, band, strict=True):
        assert part.tobytes() == full[..., 4:9, :].tobytes()
    concentration, observed, ocean, flags = whole
    assert not observed[:2].any() and not observed[17:20].any()   # days without a file
    assert (concentration[:, 5:7, 5:7] == 1.0).all() and (concentration[:, :, :3] == 0.0).all()
    assert (concentration[:, 9, 8] == 0.0).all() and ocean[9, 8] and not observed[:, 9, 8].any()
    assert flags[0, 0] == seaice.LAND and flags[4, 2] == seaice.COAST and flags[5, 5] == seaice.POLE_HOLE


def test_float16_keeps_every_g02135_concentration_to_a_quarter_of_its_unit() -> None:
    codes = np.arange(1001, dtype=np.uint16)
    fraction = seaice.decode(codes)[0]
    stored = fraction.astype(np.float16)
    assert np.abs(stored.astype(np.float64) - codes / 1000).max() <= 0.00025
    assert np.array_equal(np.rint(stored.astype(np.float32) * 1000).astype(np.uint16), codes)   # lossless
    assert len(np.unique(stored)) == 1001


def test_preprocess_stores_float16_once_and_cuts_float32_targets(tmp_path: Path,
                                                                  g02135: type[G02135]) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    out.mkdir()
    for day in range(40):
        if day not in (11, 12):
            day_file = seaice.file_name(dt.date(2020, 1, 1) + dt.timedelta(days=day))
            g02135.write(raw / day_file, g02135.codes(day))
    p = PreprocessParams(history_days=4, horizon_days=2, downsample=2, sample_stride_days=1, max_gap_days=2,
                         val_fraction=0.25, test_fraction=0.25)
    stats = preprocess(p, 0, raw, out)
    (out / "stats.json").write_text(json.dumps(stats))
    conc = np.load(out / "concentration.npy")
    assert conc.dtype == np.float16 and conc.shape == (40, 8, 8)
    assert np.load(out / "observed.npy").dtype == np.bool_
    for name, record in stats["arrays"].items():
        assert hashlib.sha256((out / f"{name}.npy").read_bytes()).hexdigest() == record["sha256"], name
    assert list(stats["arrays"]) == sorted(stats["arrays"])
    assert not (out / "concentration_train.npy").exists()   # stored once, never per split
    split = load_split(out, "train")
    starts = np.load(out / "starts_train.npy")
    x, y = split["x"][:], split["y"][:]
    assert x.dtype == np.float16 and y.dtype == np.float32
    np.testing.assert_array_equal(x, np.stack([conc[s:s + 4] for s in starts]))
    np.testing.assert_array_equal(y, np.stack([conc[s + 4:s + 6] for s in starts]).astype(np.float32))
    assert stats["files"] == 38 and stats["missing_days"] == 2 and stats["map_shape"] == [8, 8]
