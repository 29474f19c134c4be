"""Source `stac` (crop_ndvi): Sentinel-2 L2A red/NIR/SCL over a bbox from a STAC API, laid out as the
synthetic source lays it out (`T<tile>_<YYYYMMDD>_{B04,B08,SCL}.tif` + scenes.json), so preprocess,
train and evaluate run unchanged.

- Search: pystac-client, one collection, a lon/lat bbox, a date range and `eo:cloud_cover < max`.
- Grid: the bbox reprojected into the CRS of the earliest item's red asset and snapped outward to its
  10 m pixels. Every asset of every item is read through a nearest-neighbour WarpedVRT onto that grid:
  GDAL `/vsicurl/` range requests for the blocks under the AOI only, SCL resampled from 20 m to 10 m,
  items in another UTM zone reprojected onto the first one's grid, areas outside a tile left nodata (0).
- DN are written as the archive holds them. The BOA offset is decided per item from its processing
  baseline (>= 04.00: reflectance = (DN - 1000) / 10000, else DN / 10000), never from the provider's
  `earthsearch:boa_offset_applied` flag, and stored as the BOA_ADD_OFFSET tag preprocess reads.
- Items with more than `max_aoi_cloud` of the AOI's data pixels in CLOUD_SCL (or no data over the
  AOI, or a second item on a date already taken) are skipped and listed in the manifest.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from seqpipe.data.rasters import Grid, aligned, geotiff_profile, write_geotiff
from seqpipe.data.sentinel2 import SCL, SYNTHETIC_LAYOUT, index_stack
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.params import Length, Range, check, check_date, params_section
from seqpipe.sources.fetch import Transfer

log = logging.getLogger(__name__)

CLOUD_SCL = (SCL["shadow"], SCL["cloud_medium"], SCL["cloud_high"], SCL["cirrus"])   # 3, 8, 9, 10
OFFSET_RULE = ("reflectance = (DN + boa_add_offset) / 10000; boa_add_offset = -1000 from processing baseline "
               "04.00 on, else 0 (from s2:processing_baseline, not earthsearch:boa_offset_applied)")
FILE_BANDS = {"red": "B04", "nir": "B08", "scl": "SCL"}


@params_section
class StacParams(Transfer):
    """timeout_s and retries (shared with http and nsidc) apply to the STAC API and to GDAL's range reads."""

    endpoint: str            # STAC API root, e.g. https://earth-search.aws.element84.com/v1
    collection: str          # e.g. sentinel-2-l2a
    # west, south, east, north in degrees (EPSG:4326)
    bbox: Annotated[list[Annotated[float, Range(-180, 180)]], Length(4, 4)]
    start: str               # first and last day (ISO dates, inclusive)
    end: str
    # search filter: eo:cloud_cover (percent of the whole tile) below this
    max_cloud_cover: Annotated[float, Range(0, 100, low_open=True)]
    # skip items whose SCL marks more than this fraction of the AOI as cloud/shadow/cirrus
    max_aoi_cloud: Annotated[float, Range(0, 1)]
    max_items: Annotated[int, Range(1, 10_000)]   # more items than this found is an error (narrow the search)
    red_asset: str           # asset keys (Earth Search v1: red, nir, scl)
    nir_asset: str
    scl_asset: str

    def __post_init__(self) -> None:
        check(self.endpoint.startswith(("http://", "https://")), "endpoint", "not an http(s) URL: "
              f"{self.endpoint!r}")
        west, south, east, north = self.bbox
        check(-180 <= west < east <= 180 and -90 <= south < north <= 90, "bbox",
              "must be [west, south, east, north] with west < east and south < north, in "
              f"degrees: {self.bbox}")
        check(check_date("start", self.start, time=True) <= check_date("end", self.end, time=True), "end",
              "must not be before start")


@dataclass(frozen=True)
class Scene:
    """What one STAC item contributes: its date, BOA offset decision and the three asset URLs."""

    id: str
    date: str                # YYYYMMDD
    tile: str                # T33UVP (file-name prefix)
    baseline: str
    offset: int              # BOA_ADD_OFFSET: -1000 or 0
    provider_flag: Any       # earthsearch:boa_offset_applied as the item says (recorded, not trusted)
    platform: str
    hrefs: dict[str, str]    # red / nir / scl -> URL


def download_stac(p: StacParams, out_dir: Path) -> dict:
    """Search, read each item's AOI window, write the per-date GeoTIFFs; returns the manifest fields."""
    import rasterio

    scenes = search(p)
    # GDAL retries 429, 5xx and timeouts, waiting 1 s, then about twice as long each time
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif,.tiff",
                      GDAL_HTTP_TIMEOUT=str(p.timeout_s), GDAL_HTTP_MAX_RETRY=str(p.retries),
                      GDAL_HTTP_RETRY_DELAY="1", GDAL_HTTP_MERGE_CONSECUTIVE_RANGES="YES", VSI_CACHE="TRUE",
                      GDAL_CACHEMAX=64):
        grid = aoi_grid(scenes[0], p.bbox)
        taken: dict[str, str]   # date -> the id of the scene kept for it
        kept, skipped, taken = [], [], {}
        for scene in scenes:
            if scene.date in taken:
                reason = f"same date as {taken[scene.date]}"
            else:
                scl = read_asset(scene, "scl", grid)
                cloud = aoi_cloud(scl)
                if cloud is None:
                    reason = "no data over the AOI"
                elif cloud > p.max_aoi_cloud:
                    reason = f"cloud over the AOI {cloud:.3f} > max_aoi_cloud {p.max_aoi_cloud}"
                else:
                    reason = ""
            if reason:
                skipped.append({"id": scene.id, "reason": reason})
                log.info("stac: skip %s: %s", scene.id, reason)
                continue
            taken[scene.date] = scene.id
            assert cloud is not None   # else `reason` is set
            bands = {"scl": scl, "red": read_asset(scene, "red", grid), "nir": read_asset(scene, "nir", grid)}
            _write_scene(out_dir, scene, grid, bands)
            kept.append(_record(scene, cloud, _below_offset(scene, bands["red"])))
    if not kept:
        reasons = "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:3])   # all of them are in the log
        more = f"; {len(skipped) - 3} more" if len(skipped) > 3 else ""
        raise SeqpipeError(f"STAC search at {p.endpoint}: none of the {len(scenes)} items is usable "
                           f"({reasons}{more})")
    index_stack(out_dir, SYNTHETIC_LAYOUT)
    log.info("stac: %d items written, %d skipped", len(kept), len(skipped))   # run_source logs the time
    return {"synthetic": False, "endpoint": p.endpoint, "collection": p.collection, "bbox": p.bbox,
            "datetime": f"{p.start}/{p.end}", "max_cloud_cover": p.max_cloud_cover,
            "max_aoi_cloud": p.max_aoi_cloud, "cloud_scl_classes": list(CLOUD_SCL),
            "offset_rule": OFFSET_RULE,
            "crs": grid.crs.to_string(), "transform": list(grid.transform)[:6],
            "shape": [grid.height, grid.width],
            "dates": [k["date"] for k in kept], "items": kept, "skipped": skipped}


def search(p: StacParams) -> list[Scene]:
    """The items of one search as Scenes, sorted by (date, id); any API or item problem is one error line."""
    import pystac
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO
    from urllib3 import Retry

    where = f"STAC search at {p.endpoint} (collection {p.collection})"
    retry = Retry(total=p.retries, backoff_factor=1, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=None, raise_on_status=False)   # POST searches too: they change nothing
    try:
        client = Client.open(p.endpoint, stac_io=StacApiIO(timeout=p.timeout_s, max_retries=retry))
        found = client.search(collections=[p.collection], bbox=p.bbox, datetime=f"{p.start}/{p.end}",
                              query={"eo:cloud_cover": {"lt": p.max_cloud_cover}}, max_items=p.max_items + 1)
        items = list(found.items())
    except json.JSONDecodeError as exc:
        raise SeqpipeError(f"{where}: the response is not valid JSON ({exc})") from None
    except (APIError, pystac.STACError, NotImplementedError, ValueError, KeyError, TypeError) as exc:
        raise SeqpipeError(f"{where}: {type(exc).__name__}: {first_line(exc)}") from None
    if not items:
        raise SeqpipeError(f"{where}: no items in bbox {p.bbox} from {p.start} to {p.end} with "
                           f"eo:cloud_cover < {p.max_cloud_cover}")
    if len(items) > p.max_items:
        raise SeqpipeError(f"{where}: more than max_items {p.max_items} items; narrow the bbox or dates, "
                           f"or raise download.stac.max_items")
    return sorted((scene_of(item, p) for item in items), key=lambda s: (s.date, s.id))


def scene_of(item: Any, p: StacParams) -> Scene:
    """Check one pystac Item (assets present, baseline known) and decide its BOA offset."""
    props = item.properties
    hrefs = {}
    for role, key in (("red", p.red_asset), ("nir", p.nir_asset), ("scl", p.scl_asset)):
        if key not in item.assets:
            raise SeqpipeError(f"STAC item {item.id}: no {key!r} asset ({role}); it has: "
                               f"{', '.join(item.assets)}")
        hrefs[role] = item.assets[key].get_absolute_href() or item.assets[key].href
        if not hrefs[role].startswith(("http://", "https://")):
            raise SeqpipeError(f"STAC item {item.id} asset {key!r}: {hrefs[role]} is not an http(s) URL")
    baseline = baseline_of(props)
    if baseline is None:
        raise SeqpipeError(f"STAC item {item.id}: no s2:processing_baseline (nor N#### in s2:product_uri); "
                           f"cannot decide the BOA offset")
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        raise SeqpipeError(f"STAC item {item.id}: no datetime")
    tile = str(props.get("grid:code") or props.get("s2:mgrs_tile") or "AOI").removeprefix("MGRS-")
    if not re.fullmatch(r"[A-Za-z0-9]{1,16}", tile):   # it names the files in data/raw/<model>/
        raise SeqpipeError(f"STAC item {item.id}: tile {tile!r} (grid:code or s2:mgrs_tile) is "
                           "not like 33UVP")
    return Scene(id=item.id, date=when.strftime("%Y%m%d"), tile=f"T{tile.removeprefix('T')}",
                 baseline=baseline, offset=-1000 if float(baseline) >= 4.0 else 0,
                 provider_flag=props.get("earthsearch:boa_offset_applied"),
                 platform=str(props.get("platform", "")), hrefs=hrefs)


def baseline_of(props: dict) -> str | None:
    """'05.09' from s2:processing_baseline, else from the N0509 part of s2:product_uri; None if neither."""
    text = props.get("s2:processing_baseline")
    if isinstance(text, str) and re.fullmatch(r"\d{1,2}\.\d{2}", text.strip()):
        return text.strip()
    match = re.search(r"_N(\d{2})(\d{2})_", str(props.get("s2:product_uri", "")))
    return f"{match.group(1)}.{match.group(2)}" if match else None


def aoi_grid(scene: Scene, bbox: list[float]) -> Grid:
    """The bbox in the CRS of `scene`'s red asset, snapped outward to whole pixels of that asset."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds
    from rasterio.windows import transform as window_transform

    with _open(scene, "red") as ds:
        crs, transform = ds.crs, ds.transform
    if crs is None:
        raise SeqpipeError(f"STAC item {scene.id} asset red ({scene.hrefs['red']}): no CRS")
    win = from_bounds(*transform_bounds("EPSG:4326", crs, *bbox, densify_pts=21), transform=transform)
    col0, row0 = math.floor(win.col_off + 1e-6), math.floor(win.row_off + 1e-6)
    col1, row1 = math.ceil(win.col_off + win.width - 1e-6), math.ceil(win.row_off + win.height - 1e-6)
    snapped = Window(col0, row0, col1 - col0, row1 - row0)
    return Grid(crs, window_transform(snapped, transform), int(snapped.width), int(snapped.height))


def aoi_cloud(scl: np.ndarray) -> float | None:
    """Share of the SCL pixels with data (not 0) that are CLOUD_SCL; None when none has data."""
    data = scl != SCL["nodata"]
    return float(np.isin(scl[data], CLOUD_SCL).mean()) if data.any() else None


def read_asset(scene: Scene, role: str, grid: Grid) -> np.ndarray:
    """One asset on `grid` (nearest neighbour; 0 outside the tile), reading only the blocks under it."""
    from rasterio.errors import RasterioError

    with _open(scene, role) as ds:
        try:
            with aligned(ds, grid) as vrt:
                return vrt.read(1)
        except RasterioError as exc:
            raise SeqpipeError(_asset_error(scene, role, exc)) from None


def _open(scene: Scene, role: str) -> Any:
    import rasterio
    from rasterio.errors import RasterioError

    try:
        return rasterio.open(f"/vsicurl/{scene.hrefs[role]}")
    except RasterioError as exc:
        raise SeqpipeError(_asset_error(scene, role, exc)) from None


def _asset_error(scene: Scene, role: str, exc: BaseException) -> str:
    return f"STAC item {scene.id} asset {role} ({scene.hrefs[role]}): cannot read ({first_line(exc)})"


def _write_scene(out_dir: Path, scene: Scene, grid: Grid, bands: dict[str, np.ndarray]) -> None:
    tags = {"PROCESSING_BASELINE": scene.baseline, "BOA_ADD_OFFSET": str(scene.offset),
            "BOA_QUANTIFICATION_VALUE": "10000", "DATATAKE_SENSING_DATE": scene.date,
            "SPACECRAFT_NAME": scene.platform, "STAC_ITEM": scene.id}
    for role, array in bands.items():
        band = FILE_BANDS[role]
        profile = geotiff_profile(grid, "uint8" if role == "scl" else "uint16", 0)
        write_geotiff(out_dir / f"{scene.tile}_{scene.date}_{band}.tif", array.astype(profile["dtype"]),
                      profile, {**tags, "BAND": band})


def _below_offset(scene: Scene, red: np.ndarray) -> float:
    """Share of the AOI's red DN under 1000. With the offset in the data these are negative reflectances,
    ~0 of a scene; more than a tenth means the archive already removed the offset, which the baseline
    cannot tell (Earth Search has such items): warn, as the rule then subtracts it twice."""
    share = float((red[red > 0] < 1000).mean()) if (red > 0).any() else 0.0
    if scene.offset and share > 0.1:
        log.warning("stac: %s: baseline %s, but %.0f%% of its red DN over the AOI are below 1000: the "
                    "archive may already have removed the BOA offset; check its reflectances", scene.id,
                    scene.baseline, 100 * share)
    return share


def _record(scene: Scene, cloud: float, below_offset: float) -> dict:
    return {"id": scene.id, "date": scene.date, "processing_baseline": scene.baseline,
            "boa_add_offset": scene.offset, "earthsearch:boa_offset_applied": scene.provider_flag,
            "red_dn_below_1000": round(below_offset, 4), "aoi_cloud_fraction": round(cloud, 4),
            "assets": scene.hrefs,
            "files": [f"{scene.tile}_{scene.date}_{FILE_BANDS[r]}.tif" for r in ("red", "nir", "scl")]}

