"""Sentinel-2 L2A stacks on disk: how a folder of red/NIR/SCL GeoTIFFs is laid out and indexed.

`scenes.json` (INDEX) maps each date to the (file, band) of its red, NIR and SCL rasters (and, when
params set one, the DN offset that overrides the files' tags); the download sources write it and
preprocess and predict read it. rasterio is imported on use.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated

import pandas as pd

from seqpipe.data.rasters import open_raster
from seqpipe.errors import SeqpipeError, environment_error, first_line
from seqpipe.io import read_json, write_json
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
        check("date" in groups or bool(self.date_tag), "pattern", "needs a (?P<date>...) group unless "
              "date_tag is set")
        if "band" not in groups:
            check(all(b.isdigit() and int(b) >= 1 for b in (self.red, self.nir, self.scl)), "red",
                  "without a (?P<band>...) group, red/nir/scl must be 1-based band indexes")


SYNTHETIC_LAYOUT = StackLayout(pattern=r"T\w+_(?P<date>\d{8})_(?P<band>B04|B08|SCL)\.tif",
                               date_format="%Y%m%d", date_tag="", red="B04", nir="B08", scl="SCL")


def read_scenes(folder: Path) -> list[dict]:
    """The scenes of `folder`'s scenes.json, checked whole and sorted by date.

    The file is a JSON object {"scenes": [scene, ...]}; a scene is {"date": "YYYY-MM-DD", "red": {"file":
    ..., "band": N}, "nir": {...}, "scl": {...}} and optionally the DN offset "boa_add_offset" (an
    integer). A file is a relative path inside `folder`, a band a 1-based index. Anything else (not
    JSON, another top-level key, an impossible date, an unknown or missing band, a list where an object
    belongs) is one SeqpipeError naming the file and the entry. Scenes may come in any order: they are
    sorted by date, so the last is the latest; two scenes of one date are refused (which one would win is
    not the user's intent to guess)."""
    path = folder / INDEX
    if not path.exists():
        raise SeqpipeError(f"{path}: missing; run the download stage first")
    try:
        data = read_json(path)
    except (ValueError, RecursionError) as exc:   # JSONDecodeError, UnicodeDecodeError, absurd nesting
        raise SeqpipeError(f"{path}: not valid JSON ({first_line(exc)})") from None
    except OSError as exc:
        raise environment_error(exc, path) or SeqpipeError(f"{path}: cannot read "
                                                           f"({first_line(exc)})") from None
    if not isinstance(data, dict) or set(data) != {"scenes"}:
        found = f"keys {', '.join(map(repr, data))}" if isinstance(data, dict) else f"a JSON {_kind(data)}"
        raise SeqpipeError(f'{path}: expected an object with one key "scenes" (a list of dates), '
                           f'found {found}')
    scenes = data["scenes"]
    if not isinstance(scenes, list):
        raise SeqpipeError(f'{path}: "scenes" is a JSON {_kind(scenes)}; expected a list of scenes')
    if not scenes:
        raise SeqpipeError(f"{path}: lists no dates")
    checked = [_scene(path, k, scene) for k, scene in enumerate(scenes)]
    order = sorted(range(len(checked)), key=lambda k: checked[k]["date"])
    for a, b in zip(order, order[1:], strict=False):   # adjacent pairs
        if checked[a]["date"] == checked[b]["date"]:
            raise SeqpipeError(f"{path}: scenes[{max(a, b)}] repeats the date {checked[a]['date']} of "
                               f"scenes[{min(a, b)}]; one scene per date")
    return [checked[k] for k in order]


def _scene(path: Path, k: int, scene: object) -> dict:
    """One entry of scenes.json, checked (see read_scenes)."""
    where = f"{path}: scenes[{k}]"
    if not isinstance(scene, dict):
        raise SeqpipeError(f'{where} is a JSON {_kind(scene)}; expected an object with "date", "red", '
                           '"nir", "scl"')
    date = scene.get("date")
    try:
        parsed = dt.date.fromisoformat(date) if isinstance(date, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != date:
        raise SeqpipeError(f"{where}: date {date!r} is not a calendar date YYYY-MM-DD")
    where = f"{where} ({date})"
    unknown = [key for key in scene if key not in ("date", *BANDS, OFFSET_KEY)]
    if unknown:
        raise SeqpipeError(f"{where}: unknown key {unknown[0]!r}; a scene holds date, {', '.join(BANDS)} "
                           f"and optionally {OFFSET_KEY}")
    for band in BANDS:
        entry = scene.get(band)
        if entry is None:
            raise SeqpipeError(f'{where}: no "{band}" entry; every scene needs {", ".join(BANDS)}')
        if not isinstance(entry, dict) or set(entry) != {"file", "band"}:
            raise SeqpipeError(f'{where}: "{band}" must be an object {{"file": "<name>.tif", '
                               '"band": <1-based '
                               f"index>}}, found {json.dumps(entry)[:80]}")
        name, index = entry["file"], entry["band"]
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise SeqpipeError(f'{where}: "{band}" file {name!r} is not a relative path inside {path.parent}')
        if isinstance(index, bool) or not isinstance(index, int) or index < 1:
            raise SeqpipeError(f'{where}: "{band}" band {index!r} is not a 1-based band index')
    offset = scene.get(OFFSET_KEY)
    if OFFSET_KEY in scene and (isinstance(offset, bool) or not isinstance(offset, int)
                                or abs(offset) > 10000):
        raise SeqpipeError(f"{where}: {OFFSET_KEY} {offset!r} is not a DN offset such as -1000 or 0")
    return scene


def _kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


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
        assert match is not None   # `files` holds only full matches
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
        raise SeqpipeError(f"{path}: date {text!r} does not match date_format "
                           f"{layout.date_format!r}") from None
