"""Source `stac` (crop_ndvi) against a small STAC API on 127.0.0.1: real pystac-client, real GDAL /vsicurl/
range reads of tiled GeoTIFFs on the same server, the real CLI and `dvc repro`."""

from __future__ import annotations

import json
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin
from rasterio.warp import transform, transform_bounds

from seqpipe import pipelines
from seqpipe.errors import SeqpipeError
from seqpipe.metrics import detail_file
from seqpipe.params import ParamsError, load_params
from seqpipe.sources.stac import StacParams, baseline_of, download_stac
from seqpipe.stages.download import run_source
from tests.conftest import REPO, run, tiny_overrides, write_params
from tests.servers import FileServer, Response

CRS, ORIGIN, SIZE, BLOCK = "EPSG:32633", (399960.0, 5300040.0), 1024, 64   # a 10 km "tile" at 10 m
AOI_PX = (232, 236, 40, 40)              # row, col, height, width of the field site inside the tile
N_DATES = 10                             # usable dates, 5 days apart
BASELINES = ["03.01", "03.01", "04.00"] + ["05.09"] * (N_DATES - 3)
CLOUDY = "S2B_33UVP_20230603_0_L2A"      # passes the tile cloud filter, but clouds over the AOI
FILTERED = "S2A_33UVP_20230608_0_L2A"    # eo:cloud_cover 95: the API must not return it
DUPLICATE = "S2B_33UVQ_20230606_0_L2A"   # a second tile on an already-taken date (sorts after 33UVP)
REAL_DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())["models"]["crop_ndvi"]["download"]["stac"]


def _aoi_bbox() -> list[float]:
    row, col, height, width = AOI_PX
    west, north = ORIGIN[0] + col * 10 + 2, ORIGIN[1] - row * 10 - 2
    bounds = transform_bounds(CRS, "EPSG:4326", west, north - height * 10 + 4, west + width * 10 - 4, north)
    return [round(v, 6) for v in bounds]


def _write_tif(path: Path, data: np.ndarray, pixel: float, crs: str = CRS, origin: tuple = ORIGIN) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1, "dtype": data.dtype,
               "crs": crs, "transform": from_origin(*origin, pixel, pixel), "nodata": 0, "tiled": True,
               "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def write_archive(root: Path) -> dict[str, dict]:
    """Tiled GeoTIFFs per item under root/<id>/ (B04/B08 uint16 DN at 10 m with the baseline's offset, SCL
    uint8 at 20 m); returns per item id its STAC properties, true reflectances and SCL."""
    rng = np.random.default_rng(3)
    cols = np.mgrid[0:SIZE, 0:SIZE][1]
    days = [date(2023, 6, 1) + timedelta(days=5 * k) for k in range(N_DATES)]
    specs = [(f"S2{'AB'[k % 2]}_33UVP_{day:%Y%m%d}_0_L2A", day, BASELINES[k], 10.0) for k, day in enumerate(days)]
    specs += [(CLOUDY, date(2023, 6, 3), "05.09", 40.0), (FILTERED, date(2023, 6, 8), "05.09", 95.0),
              (DUPLICATE, date(2023, 6, 6), "05.09", 10.0)]
    items = {}
    for k, (item_id, day, baseline, cover) in enumerate(specs):
        ndvi = 0.2 + 0.6 * np.sin(np.pi * (k % N_DATES + 1) / (N_DATES + 1)) * (0.5 + cols / (2 * SIZE))
        red = np.round(800 * (1 - ndvi)) + rng.integers(-30, 30, ndvi.shape)    # reflectance x 10000, below
        nir = np.round(1500 * (1 + ndvi)) + rng.integers(-30, 30, ndvi.shape)   # 0.1 for red, as over crops
        scl = np.full((SIZE // 2, SIZE // 2), 4, np.uint8)
        row, col, height, width = (v // 2 for v in AOI_PX)
        if item_id == CLOUDY:
            scl[row:row + height * 3 // 4, col:col + width] = 9
        else:
            scl[row + 2:row + 5, col + 3:col + 6] = 8 + k % 3   # a small cloud or cirrus patch
            scl[row + 7:row + 9, col + 1:col + 4] = 3
        offset = 1000 if float(baseline) >= 4 else 0
        for band, data in (("B04", red + offset), ("B08", nir + offset)):
            _write_tif(root / item_id / f"{band}.tif", data.astype(np.uint16), 10.0)
        _write_tif(root / item_id / "SCL.tif", scl, 20.0)
        props = {"datetime": f"{day}T10:06:21.024000Z", "platform": "sentinel-2" + item_id[2].lower(),
                 "eo:cloud_cover": cover, "s2:processing_baseline": baseline, "proj:epsg": 32633,
                 "grid:code": f"MGRS-{item_id[4:9]}", "earthsearch:boa_offset_applied": k % N_DATES != 0}
        items[item_id] = {"properties": props, "red": red / 10000, "nir": nir / 10000, "scl": scl}
    return items


def item_json(url: str, item_id: str, props: dict, missing: str = "") -> dict:
    west, south, east, north = transform_bounds(CRS, "EPSG:4326", ORIGIN[0], ORIGIN[1] - SIZE * 10,
                                                ORIGIN[0] + SIZE * 10, ORIGIN[1])
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    assets = {key: {"href": f"{url}/{item_id}/{band}.tif", "type": "image/tiff; application=geotiff; "
                    "profile=cloud-optimized", "roles": ["data"]}
              for key, band in (("red", "B04"), ("nir", "B08"), ("scl", "SCL")) if key != missing}
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": "sentinel-2-l2a",
            "bbox": [west, south, east, north], "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": props, "links": [], "assets": assets}


def api_routes(server: FileServer, items: dict[str, dict], searches: list[dict], page_size: int = 4,
               missing: dict[str, str] | None = None) -> dict:
    """A STAC API: landing page with conformance and search links, and POST /search with the collection
    and eo:cloud_cover filters and stac-server style `next` links (POST, merge)."""
    conforms = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                "https://api.stacspec.org/v1.0.0/item-search#query"]

    def landing(method: str, query: dict, body: bytes) -> Response:
        return Response.json({"type": "Catalog", "id": "test-api", "stac_version": "1.0.0", "description": "test",
                              "conformsTo": conforms, "links": [
                                  {"rel": "self", "href": f"{server.url}/"}, {"rel": "root", "href": f"{server.url}/"},
                                  {"rel": "search", "href": f"{server.url}/search", "method": "POST",
                                   "type": "application/geo+json"}]})

    def search(method: str, query: dict, body: bytes) -> Response:
        request = json.loads(body)
        searches.append(request)
        limit = request.get("query", {}).get("eo:cloud_cover", {}).get("lt", 100)
        hits = [item_json(server.url, i, v["properties"], (missing or {}).get(i, ""))
                for i, v in items.items() if "sentinel-2-l2a" in request["collections"]
                and v["properties"]["eo:cloud_cover"] < limit]
        start = int(request.get("next", 0))
        links = []
        if start + page_size < len(hits):
            links.append({"rel": "next", "href": f"{server.url}/search", "method": "POST", "merge": True,
                          "body": {"next": str(start + page_size)}})
        return Response.json({"type": "FeatureCollection", "features": hits[start:start + page_size],
                              "links": links}, 200)

    return {"/": landing, "/search": search}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("s2")
    return root, write_archive(root)


@pytest.fixture
def api(archive: tuple[Path, dict]):
    root, items = archive
    with FileServer(root, stall_s=15) as server:
        server.searches = []
        server.routes.update(api_routes(server, items, server.searches))
        yield server


def stac_params(server: FileServer, **extra: object) -> dict:
    base = "models.crop_ndvi.download"
    return {**tiny_overrides("crop_ndvi"), f"{base}.source": "stac", f"{base}.stac.endpoint": f"{server.url}/",
            f"{base}.stac.bbox": _aoi_bbox(), f"{base}.stac.start": "2023-06-01", f"{base}.stac.end": "2023-08-31",
            f"{base}.stac.max_cloud_cover": 50.0, f"{base}.stac.max_aoi_cloud": 0.3,
            f"{base}.stac.timeout_s": 5.0, f"{base}.stac.retries": 2,
            **{f"{base}.stac.{k}": v for k, v in extra.items()}}


def direct_params(server: FileServer, **extra: object) -> StacParams:
    """The same settings as a StacParams, for calling the source in-process."""
    values = {k.rsplit(".", 1)[1]: v for k, v in stac_params(server, **extra).items() if ".stac." in k}
    return StacParams(**{**REAL_DEFAULTS, **values})


def test_pipeline_through_dvc_repro_decodes_per_baseline_and_reads_only_ranges(api: FileServer, archive, repo_copy,
                                                                               tmp_path: Path) -> None:
    _, items = archive
    write_params(repo_copy / "params.yaml", stac_params(api))
    run(["dvc", "repro", "evaluate-crop_ndvi"], repo_copy)
    raw = repo_copy / "data/raw/crop_ndvi"
    manifest = json.loads((raw / "manifest.json").read_text())
    assert json.loads((repo_copy / detail_file("crop_ndvi")).read_text())["n_test_windows"] > 0

    kept = [i for i in items if i not in (CLOUDY, FILTERED, DUPLICATE)]
    assert [r["id"] for r in manifest["items"]] == kept
    assert [r["processing_baseline"] for r in manifest["items"]] == BASELINES
    assert [r["boa_add_offset"] for r in manifest["items"]] == [0 if float(b) < 4 else -1000 for b in BASELINES]
    assert [s["id"] for s in manifest["skipped"]] == [CLOUDY, DUPLICATE]
    assert "cloud over the AOI" in manifest["skipped"][0]["reason"] and "same date" in manifest["skipped"][1]["reason"]
    assert manifest["source"] == "stac" and manifest["synthetic"] is False and manifest["crs"] == CRS
    assert manifest["endpoint"] == f"{api.url}/" and manifest["cloud_scl_classes"] == [3, 8, 9, 10]
    files = sorted(p.name for p in raw.iterdir() if p.name != "manifest.json")
    assert sorted(manifest["files"]) == files and len(files) == 3 * N_DATES + 1
    assert date.today().isoformat() not in json.dumps(manifest)   # no wall-clock time in the manifest

    # the grid: the bbox's projected bounds, snapped outward to the tile's 10 m pixels
    a, _, west, _, e, north = manifest["transform"]
    col0, row0 = (west - ORIGIN[0]) / 10, (ORIGIN[1] - north) / 10
    assert (a, e) == (10.0, -10.0) and col0.is_integer() and row0.is_integer()
    height, width = manifest["shape"]
    inner = transform_bounds("EPSG:4326", CRS, *_aoi_bbox())
    assert west <= inner[0] < west + 10 and north >= inner[3] > north - 10
    assert west + 10 * width - 10 < inner[2] <= west + 10 * width
    rows, cols = slice(int(row0), int(row0) + height), slice(int(col0), int(col0) + width)
    for record in manifest["items"]:
        truth = items[record["id"]]
        for band, key in (("B04", "red"), ("B08", "nir")):
            with rasterio.open(raw / f"T33UVP_{record['date']}_{band}.tif") as ds:
                reflectance = (ds.read(1) + float(ds.tags()["BOA_ADD_OFFSET"])) / 10000
                assert ds.tags()["PROCESSING_BASELINE"] == record["processing_baseline"]
            np.testing.assert_allclose(reflectance, truth[key][rows, cols], atol=1e-9, err_msg=record["id"])
        with rasterio.open(raw / f"T33UVP_{record['date']}_SCL.tif") as ds:   # 20 m -> 10 m, nearest
            assert ds.res == (10.0, 10.0)
            np.testing.assert_array_equal(ds.read(1), truth["scl"].repeat(2, 0).repeat(2, 1)[rows, cols])

    # only range reads of the assets, a small part of each file; the filtered item never touched
    asset_gets = [(p, r) for m, p, r in api.requests if m == "GET" and p.endswith(".tif")]
    assert asset_gets and all(r and r.startswith("bytes=") and "," not in r for _, r in asset_gets)
    served = {}
    for path, header in asset_gets:
        first, last = header.removeprefix("bytes=").split("-")
        served[path] = served.get(path, 0) + int(last) - int(first) + 1
    bands = [p for p in served if p.endswith(("B04.tif", "B08.tif"))]   # (SCL files are ~1 kB: all header)
    assert len(bands) == 2 * N_DATES
    assert all(served[p] < 0.1 * (archive[0] / p.lstrip("/")).stat().st_size for p in bands), served
    assert not [p for p in served if FILTERED in p or DUPLICATE in p]
    assert sorted(p for p in served if CLOUDY in p) == [f"/{CLOUDY}/SCL.tif"]   # skipped before red/NIR
    search = api.searches[0]
    assert search["bbox"] == _aoi_bbox() and search["collections"] == ["sentinel-2-l2a"]
    assert search["query"] == {"eo:cloud_cover": {"lt": 50.0}} and search["datetime"].startswith("2023-06-01")
    assert len(api.searches) == 3   # 12 items in pages of 4: the `next` links were followed

    # the same remote content gives the same bytes (no wall-clock time anywhere)
    module = pipelines.get("crop_ndvi").stage("download")
    download = load_params(repo_copy / "params.yaml").section("crop_ndvi", "download", module.DownloadParams)
    again = run_source("stac", module.SOURCES, download, 0, tmp_path / "again")
    assert json.dumps(again, sort_keys=True) == json.dumps(manifest, sort_keys=True)


FAULTY = "S2A_33UVP_20230621_0_L2A"   # the fifth date


def _malformed(api: FileServer, items: dict) -> dict:
    api.routes["/search"] = lambda *_: Response(200, b'{"type": "FeatureCollection", "features": [{"id": ')
    return {}


def _missing_nir(api: FileServer, items: dict) -> dict:
    api.routes["/search"] = api_routes(api, items, [], missing={FAULTY: "nir"})["/search"]
    return {}


@pytest.mark.parametrize("setup, expected", [
    (_malformed, "STAC search at {url}/ (collection sentinel-2-l2a): the response is not valid JSON"),
    (_missing_nir, f"STAC item {FAULTY}: no 'nir' asset (nir); it has: red, scl"),
    (lambda api, items: {"max_cloud_cover": 5.0},
     "STAC search at {url}/ (collection sentinel-2-l2a): no items in bbox"),
    (lambda api, items: api.fail(f"{FAULTY}/B08.tif", "404") or {},
     f"STAC item {FAULTY} asset nir ({{url}}/{FAULTY}/B08.tif): cannot read"),
    (lambda api, items: api.fail(f"{FAULTY}/B08.tif", *["stall"] * 8) or
     {"timeout_s": 0.5, "retries": 1}, f"STAC item {FAULTY} asset nir ({{url}}/{FAULTY}/B08.tif): cannot read"),
], ids=["malformed-json", "item-without-nir", "zero-items", "asset-404", "asset-stalls"])
def test_failures_are_one_error_line_and_leave_the_raw_folder_alone(api: FileServer, archive, tmp_path: Path,
                                                                    setup, expected: str) -> None:
    write_params(tmp_path / "params.yaml", stac_params(api, **setup(api, archive[1])))
    raw = tmp_path / "data/raw/crop_ndvi"
    raw.mkdir(parents=True)
    (raw / "previous.txt").write_text("the last good download\n")
    started = time.monotonic()
    proc = run(["seqpipe", "download", "crop_ndvi"], tmp_path, check=False)
    elapsed = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert lines[-1].startswith("seqpipe: error: " + expected.format(url=api.url)), lines[-1]
    assert [line for line in lines if "seqpipe: error" in line or " ERROR " in line] == lines[-1:], proc.stderr
    assert [p.name for p in raw.parent.iterdir()] == ["crop_ndvi"]            # no temp folder left
    assert [p.name for p in raw.iterdir()] == ["previous.txt"]               # the last good output stays
    assert elapsed < 30


def test_asset_500_twice_then_success_is_retried_by_gdal(api: FileServer, archive, tmp_path: Path) -> None:
    api.fail(f"{FAULTY}/B08.tif", "500", "500")
    write_params(tmp_path / "params.yaml", stac_params(api))
    run(["seqpipe", "download", "crop_ndvi"], tmp_path)
    manifest = json.loads((tmp_path / "data/raw/crop_ndvi/manifest.json").read_text())
    assert FAULTY in [r["id"] for r in manifest["items"]]
    assert not api.faults[f"/{FAULTY}/B08.tif"]                       # both 500s were served ...
    assert len([p for _, p, _ in api.requests if p == f"/{FAULTY}/B08.tif"]) >= 3   # ... and retried past


def test_a_stac_api_500_is_retried(api: FileServer, tmp_path: Path) -> None:
    api.fail("/search", "500")
    fields = download_stac(direct_params(api), tmp_path)
    assert len(fields["items"]) == N_DATES and not api.faults["/search"]
    assert api.paths_requested("POST") == ["/search"] * 4   # the failed first page, then pages 1 to 3


def test_no_usable_item_is_one_error_listing_why(api: FileServer, tmp_path: Path) -> None:
    with pytest.raises(SeqpipeError) as info:
        download_stac(direct_params(api, max_aoi_cloud=0.0), tmp_path)
    message = str(info.value)
    assert message.startswith(f"STAC search at {api.url}/: none of the 12 items is usable (") and "\n" not in message
    assert f"{CLOUDY}: cloud over the AOI 0.680 > max_aoi_cloud 0.0" in message and message.endswith("; 9 more)")
    assert list(tmp_path.iterdir()) == []


def test_params_and_baseline_rules() -> None:
    with pytest.raises(ParamsError, match="bbox: must be .west, south, east, north. with west < east"):
        StacParams(**{**REAL_DEFAULTS, "bbox": [16.62, 48.2, 16.6, 48.215]})
    assert baseline_of({"s2:processing_baseline": "05.09"}) == "05.09"
    uri = "S2A_MSIL2A_20210601T100031_N0300_R122_T33UVP_20210601T120543.SAFE"
    assert baseline_of({"s2:product_uri": uri}) == "03.00"
    assert baseline_of({"s2:processing_baseline": "n/a"}) is None


def test_an_item_in_another_utm_zone_is_reprojected_onto_the_first_items_grid(archive, tmp_path: Path) -> None:
    root, items = archive
    first = next(iter(items))
    shutil.copytree(root / first, tmp_path / "api" / first)
    west, south, east, north = transform_bounds("EPSG:4326", "EPSG:32632", *_aoi_bbox())
    origin = (np.floor(west / 10) * 10 - 200, np.ceil(north / 10) * 10 + 200)
    shape = (int((origin[1] - south) // 10) + 20, int((east - origin[0]) // 10) + 20)
    dn = (1000 + 10 * np.arange(shape[0])[:, None] + np.arange(shape[1])).astype(np.uint16)
    other = "S2A_32UQU_20230602_0_L2A"
    _write_tif(tmp_path / "api" / other / "B04.tif", dn, 10.0, "EPSG:32632", origin)
    _write_tif(tmp_path / "api" / other / "B08.tif", dn, 10.0, "EPSG:32632", origin)
    _write_tif(tmp_path / "api" / other / "SCL.tif", np.full((shape[0] // 2 + 1, shape[1] // 2 + 1), 4, np.uint8),
               20.0, "EPSG:32632", origin)
    props = {**items[first]["properties"], "datetime": "2023-06-02T10:16:21Z", "proj:epsg": 32632,
             "grid:code": "MGRS-32UQU"}
    with FileServer(tmp_path / "api") as server:
        server.routes.update(api_routes(server, {first: items[first], other: {"properties": props}}, []))
        fields = download_stac(direct_params(server), tmp_path / "out")
    assert [r["id"] for r in fields["items"]] == [first, other] and fields["crs"] == CRS
    with rasterio.open(tmp_path / "out/T33UVP_20230601_B04.tif") as ref, \
            rasterio.open(tmp_path / "out/T32UQU_20230602_B04.tif") as got:
        assert got.crs == ref.crs and got.transform == ref.transform and got.shape == ref.shape
        rows, cols = np.mgrid[0:got.height, 0:got.width]
        xs, ys = rasterio.transform.xy(got.transform, rows.ravel(), cols.ravel())
        xs, ys = transform(CRS, "EPSG:32632", xs, ys)
        expected = 1000 + 10 * ((origin[1] - np.array(ys)) // 10) + (np.array(xs) - origin[0]) // 10
        np.testing.assert_array_equal(got.read(1).ravel(), expected)   # the source pixel under each centre


def test_an_offset_the_archive_already_removed_is_flagged(archive, tmp_path: Path, caplog) -> None:
    """Baseline 05.09 claimed, but DN without the +1000 (as some Earth Search COGs are): the rule still
    applies -1000 (decided from the baseline), and the manifest and a warning say the data disagree."""
    root, items = archive
    first, later = list(items)[0], list(items)[5]          # baselines 03.01 (no offset in DN) and 05.09
    wrong = {**items[first]["properties"], "s2:processing_baseline": "05.09"}
    with FileServer(root) as server:
        server.routes.update(api_routes(server, {first: {"properties": wrong}, later: items[later]}, []))
        fields = download_stac(direct_params(server), tmp_path)
    records = {r["id"]: r for r in fields["items"]}
    assert records[first]["boa_add_offset"] == -1000 and records[first]["red_dn_below_1000"] == 1
    assert records[later]["boa_add_offset"] == -1000 and records[later]["red_dn_below_1000"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(f"stac: {first}: baseline 05.09, but")
