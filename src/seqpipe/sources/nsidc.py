"""Source `nsidc`: Sea Ice Index (G02135) daily concentration GeoTIFFs from NSIDC's HTTPS server.

A day's file is
`{base_url}/{north|south}/daily/geotiff/{YYYY}/{MM}_{Mon}/{N|S}_{YYYYMMDD}_concentration_v{X.Y}.tif`.
The version is not assumed: each month folder's index page is read and every day takes the newest
version listed there (v4.0 over v3.0). Days not listed are recorded in the manifest; more than
`max_missing_days` fail. `crop` cuts a pixel window out of every file after download, written with the
same G02135 writer as the synthetic source, so the raw folder has the synthetic layout.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Annotated, Literal

from seqpipe.data import seaice
from seqpipe.errors import SeqpipeError
from seqpipe.io import sha256_file
from seqpipe.params import Range, as_dict, check, check_date, params_section
from seqpipe.sources.fetch import HttpStatusError, Transfer, check_url, fetch, fetch_text

log = logging.getLogger(__name__)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# a row or column of a hemisphere grid (448 x 304 north, 332 x 316 south)
Pixels = Annotated[int, Range(0, 10_000)]


@params_section
class PixelWindow:
    row_off: Pixels   # first row and column of the window in the downloaded raster
    col_off: Pixels
    height: Annotated[int, Range(8, 10_000)]
    width: Annotated[int, Range(8, 10_000)]


@params_section
class NsidcParams(Transfer):
    base_url: str                         # e.g. https://noaadata.apps.nsidc.org/NOAA/G02135
    hemisphere: Literal["north", "south"]
    start: str                            # first day, YYYY-MM-DD
    end: str                              # last day, YYYY-MM-DD (inclusive)
    # days not on the server that are tolerated (and recorded)
    max_missing_days: Annotated[int, Range(0, 100_000)]
    crop: PixelWindow | None              # null keeps the whole hemisphere grid

    def __post_init__(self) -> None:
        check_url(self.base_url, "base_url")
        check(check_date("start", self.start) <= check_date("end", self.end), "end",
              f"must not be before start ({self.start})")

    @property
    def days(self) -> list[dt.date]:
        first, last = dt.date.fromisoformat(self.start), dt.date.fromisoformat(self.end)
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def month_url(self, year: int, month: int) -> str:
        return (f"{self.base_url.rstrip('/')}/{self.hemisphere}/daily/geotiff/{year}/"
                f"{month:02d}_{MONTHS[month - 1]}/")


def download_series(p: NsidcParams, out_dir: Path) -> dict:
    """One G02135 file per available day of [start, end] into `out_dir`; returns the manifest fields."""
    out_dir.mkdir(parents=True, exist_ok=True)
    days = p.days
    listed: dict[dt.date, tuple[str, str]] = {}
    for year, month in sorted({(d.year, d.month) for d in days}):
        listed.update(list_month(p, year, month, out_dir))
    missing = [d for d in days if d not in listed]
    if len(missing) > p.max_missing_days:
        shown = ", ".join(d.isoformat() for d in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise SeqpipeError(f"{p.month_url(missing[0].year, missing[0].month)}: {len(missing)} of {len(days)} "
                           f"days from {p.start} to {p.end} are not on the server, more than "
                           f"download.nsidc.max_missing_days={p.max_missing_days} ({shown})")
    downloaded = {}
    for day in (d for d in days if d in listed):
        url, version = listed[day]
        path = fetch(url, out_dir / url.rsplit("/", 1)[1], p)
        downloaded[path.name] = {"url": url, "version": version, "sha256": sha256_file(path)}
        if p.crop is not None:
            crop_file(path, p.crop)
    if missing:
        log.warning("nsidc: %d day(s) not on the server: %s", len(missing), ", ".join(map(str, missing)))
    seaice.read_series(out_dir)   # every file on one G02135 grid, as for `local`
    return {"synthetic": False, "product": "NSIDC G02135 (Sea Ice Index) daily GeoTIFF",
            "base_url": p.base_url,
            "hemisphere": p.hemisphere, "start": p.start, "end": p.end, "crop": as_dict(p.crop),
            "missing_days": [d.isoformat() for d in missing], "downloaded": downloaded}


def list_month(p: NsidcParams, year: int, month: int, folder: Path) -> dict[dt.date, tuple[str, str]]:
    """Day -> (URL, version) of the newest version of each file the month's index page lists."""
    url = p.month_url(year, month)
    try:
        page = fetch_text(url, folder, p)
    except HttpStatusError as exc:
        if exc.status == 404:   # no folder for the month: all its days are missing
            return {}
        raise
    prefix = "N" if p.hemisphere == "north" else "S"
    pattern = re.compile(rf'href="(?:[^"]*/)?({prefix}_(\d{{8}})_concentration_v(\d+)\.(\d+)\.tif)"')
    best: dict[dt.date, tuple[tuple[int, int], str]] = {}
    for match in pattern.finditer(page):
        name, stamp, major, minor = match.groups()
        try:
            day = dt.datetime.strptime(stamp, "%Y%m%d").date()
        except ValueError:
            continue
        version = (int(major), int(minor))
        if day not in best or version > best[day][0]:
            best[day] = (version, name)
    return {day: (url + name, f"{v[0]}.{v[1]}") for day, (v, name) in best.items()}


def crop_file(path: Path, window: PixelWindow) -> None:
    """Replace a G02135 file with the pixel window of it (same codes, the window's grid)."""
    from affine import Affine

    raw, grid = seaice.read_raw(path)
    if window.row_off + window.height > grid.height or window.col_off + window.width > grid.width:
        raise SeqpipeError(f"{path}: download.nsidc.crop {as_dict(window)} reaches outside its "
                           f"{grid.height}x{grid.width} pixels")
    rows = slice(window.row_off, window.row_off + window.height)
    cols = slice(window.col_off, window.col_off + window.width)
    transform = grid.transform @ Affine.translation(window.col_off, window.row_off)
    seaice.write_geotiff(path, raw[rows, cols], seaice.Grid(grid.crs, transform, window.width, window.height))
