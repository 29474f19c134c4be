"""Sentinel-2 L2A stacks on disk: how a folder of red/NIR/SCL GeoTIFFs is laid out and indexed.

`scenes.json` (INDEX) maps each date to the (file, band) of its red, NIR and SCL rasters (and, when
params set one, the DN offset that overrides the files' tags); the download sources write it and
preprocess and predict read it. rasterio is imported on use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import pandas as pd

from seqpipe.data.rasters import open_raster
from seqpipe.errors import SeqpipeError
from seqpipe.io import write_json
from seqpipe.params import ParamsError, Range, check, params_section

INDEX = "scenes.json"   # date -> (file, band) of red, NIR and SCL: what preprocess and predict read
OFFSET_KEY = "boa_add_offset"   # in a scene of scenes.json: the DN offset set in params, over the files' tags
BANDS = ("red", "nir", "scl")
SCL = {"nodata": 0, "saturated": 1, "shadow": 3, "vegetation": 4, "not_vegetated": 5, "water": 6,
       "cloud_medium": 8, "cloud_high": 9, "cirrus": 10}


@params_section
class StackLayout:
    """How a folder of GeoTIFFs is organised: file-name regex, where the date is, which band is which."""

    pattern: str       # regex matched against file names; named groups `date` and `band` (both optional)
    date_format: str   # strptime format of the `date` group (or of the tag)
    date_tag: str      # read the date from this GeoTIFF tag instead of the `date` group ("" = use the group)
    red: str           # band name matched by the `band` group, or a 1-based band index without it
    nir: str
    scl: str
    # DN offset for every file, such as -1000 (0: already offset-free); None: from the tags
    boa_add_offset: Annotated[int, Range(-10_000, 10_000)] | None = None

    def __post_init__(self) -> None:
        try:
            groups = re.compile(self.pattern).groupindex
        except re.error as exc:
            raise ParamsError(f"pattern: not a valid regex ({exc})") from None
        check("date" in groups or self.date_tag, "pattern", "needs a (?P<date>...) group unless date_tag is set")
        if "band" not in groups:
            check(all(b.isdigit() and int(b) >= 1 for b in (self.red, self.nir, self.scl)), "red",
                  "without a (?P<band>...) group, red/nir/scl must be 1-based band indexes")


SYNTHETIC_LAYOUT = StackLayout(pattern=r"T\w+_(?P<date>\d{8})_(?P<band>B04|B08|SCL)\.tif", date_format="%Y%m%d",
                               date_tag="", red="B04", nir="B08", scl="SCL")


def index_stack(folder: Path, layout: StackLayout) -> list[dict]:
    """Find every date's red/NIR/SCL (file, band) in `folder` and write scenes.json there."""
    scenes = find_scenes(folder, layout)
    write_json(folder / INDEX, {"scenes": scenes})
    return scenes


def find_scenes(folder: Path, layout: StackLayout) -> list[dict]:
    """Every date's red/NIR/SCL as {"date", "red": {"file", "band"}, ...}, sorted by date."""
    regex = re.compile(layout.pattern)
    by_date: dict[str, dict] = {}
    files = sorted(f for f in folder.iterdir() if f.is_file() and regex.fullmatch(f.name))
    if not files:
        raise SeqpipeError(f"{folder}: no file name matches the pattern {layout.pattern!r}")
    for f in files:
        match = regex.fullmatch(f.name)
        date = _date_of(f, match, layout)
        scene = by_date.setdefault(date, {"date": date})
        if "band" in regex.groupindex:
            wanted = {getattr(layout, b): b for b in BANDS}
            role = wanted.get(match.group("band"))
            if role is None:
                continue
            if role in scene:
                raise SeqpipeError(f"{f}: a second {role} file for {date} (also {scene[role]['file']})")
            scene[role] = {"file": f.name, "band": 1}
        else:
            if "red" in scene:
                raise SeqpipeError(f"{f}: a second file for {date} (also {scene['red']['file']})")
            scene.update({b: {"file": f.name, "band": int(getattr(layout, b))} for b in BANDS})
    scenes = [by_date[d] for d in sorted(by_date)]
    for scene in scenes:
        missing = [b for b in BANDS if b not in scene]
        if missing:
            raise SeqpipeError(f"{folder}: date {scene['date']} has no {', '.join(missing)} file "
                               f"(bands {layout.red}/{layout.nir}/{layout.scl})")
        if layout.boa_add_offset is not None:   # wins over the files' tags when preprocess scales the DN
            scene[OFFSET_KEY] = layout.boa_add_offset
    return scenes


def _date_of(path: Path, match: re.Match, layout: StackLayout) -> str:
    if layout.date_tag:
        with open_raster(path) as ds:
            text = ds.tags().get(layout.date_tag)
        if text is None:
            raise SeqpipeError(f"{path}: no {layout.date_tag!r} tag (download.local.date_tag)")
    else:
        text = match.group("date")
    try:
        return pd.to_datetime(text, format=layout.date_format).strftime("%Y-%m-%d")
    except ValueError:
        raise SeqpipeError(f"{path}: date {text!r} does not match date_format {layout.date_format!r}") from None
