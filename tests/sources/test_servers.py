"""The test HTTP server itself: Range answers that GDAL's /vsicurl/ accepts, folder indexes, faults."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from tests.servers import FileServer


def test_vsicurl_reads_a_window_with_range_requests(tmp_path: Path) -> None:
    data = np.arange(512 * 512, dtype="uint16").reshape(512, 512)
    profile = dict(driver="GTiff", width=512, height=512, count=1, dtype="uint16", crs="EPSG:32633",
                   transform=from_origin(500000, 4600000, 10, 10), tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(tmp_path / "b04.tif", "w", **profile) as dst:
        dst.write(data, 1)
    with FileServer(tmp_path) as server, rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        with rasterio.open(f"/vsicurl/{server.url}/b04.tif") as src:
            window = src.read(1, window=Window(300, 260, 20, 10))
    np.testing.assert_array_equal(window, data[260:270, 300:320])
    ranges = [r for m, p, r in server.requests if m == "GET" and p == "/b04.tif"]
    assert ranges and all(r and r.startswith("bytes=") for r in ranges)


def test_index_page_and_faults(tmp_path: Path) -> None:
    (tmp_path / "daily").mkdir()
    (tmp_path / "daily" / "a.tif").write_bytes(b"x" * 100)
    with FileServer(tmp_path) as server:
        index = urllib.request.urlopen(f"{server.url}/daily/").read().decode()
        assert '<a href="a.tif">' in index
        server.fail("daily/a.tif", "500", "404")
        for code in (500, 404):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{server.url}/daily/a.tif")
            assert err.value.code == code
        assert urllib.request.urlopen(f"{server.url}/daily/a.tif").read() == b"x" * 100
        server.fail("daily/a.tif", "truncate")
        with pytest.raises(Exception):
            urllib.request.urlopen(f"{server.url}/daily/a.tif").read()
