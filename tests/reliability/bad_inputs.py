"""The bad-input harness shared by the test_bad_inputs*.py tables: good tiny data made once per module
by the real stages, builders of bad files, and `check_refused`, which runs one case through the real
CLI and expects a non-zero exit, one error line naming the file or key, no traceback, no output
written and no existing file changed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio

from seqpipe import checkpoint
from tests.conftest import file_hashes, run, tiny_overrides, write_params


def good(base: Path, stage: str, model: str) -> Path:
    """data/<raw|processed>/<model> of `base`, running the real stage(s) the first time."""
    folder = base / "data" / ("raw" if stage == "download" else "processed") / model
    if not folder.exists():
        if stage == "preprocess":
            good(base, "download", model)
        run(["seqpipe", stage, model], base)
    return folder


# ---- helpers that build bad inputs ----------------------------------------------------------------

def copy_raw(base: Path, work: Path, model: str) -> Path:
    """The good raw folder of `model`, copied into the case's working folder."""
    shutil.copytree(good(base, "download", model), work / "data/raw" / model)
    return work / "data/raw" / model


def g02135_folder(base: Path, work: Path) -> Path:
    """A user's folder of good G02135 daily files (for ice_forecast's `local` source)."""
    folder = work / "g02135"
    shutil.copytree(good(base, "download", "ice_forecast"), folder, ignore=shutil.ignore_patterns("*.json"))
    return folder


def nth_file(folder: Path, pattern: str, n: int = 3) -> Path:
    return sorted(folder.glob(pattern))[n]


def rewrite_tif(path: Path, *, data: Callable[[np.ndarray], np.ndarray] | None = None, **profile: object) -> None:
    """Rewrite a GeoTIFF with rasterio, changing its pixels and/or profile keys (crs, dtype, width...)."""
    with rasterio.open(path) as src:
        array, new, tags = src.read(), {**src.profile}, src.tags()
    new.update(profile)
    if data is not None:
        array = data(array)
    array = array[:, : new["height"], : new["width"]].astype(new["dtype"])
    path.unlink()
    with rasterio.open(path, "w", **new) as dst:
        dst.update_tags(**tags)
        dst.write(array)


def bandwidth_csv(base: Path, work: Path, edit: Callable[[list[str]], list[str]]) -> Path:
    """data/raw/bandwidth with a CSV edited line by line (line 0 is the header)."""
    raw = copy_raw(base, work, "bandwidth")
    csv = raw / "bandwidth.csv"
    csv.write_text("".join(f"{line}\n" for line in edit(csv.read_text().splitlines())))
    return csv


def set_cell(column: str, row: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        return lines
    return edit


def fake_checkpoint(path: Path, **fields: object) -> Path:
    """A checkpoint in the real format (torch zip) whose identity fields are `fields`."""
    checkpoint.save(path, {"model": "bandwidth", "network": "LSTMRegressor", "network_args": {},
                           "fingerprint": "0" * 16, "state_dict": {}, "epoch": 1, **fields})
    return path


@dataclass
class Case:
    id: str
    command: list[str]
    setup: Callable[[Path, Path], str]   # (base, work) -> text the error line must contain
    output: str                           # the stage output that must not exist (or stay unchanged)
    params: dict = field(default_factory=dict)
    slow: bool = False                    # a second case of an item the default run already covers



def check_refused(case: Case, base: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    write_params(work / "params.yaml", {**tiny_overrides(), **case.params})
    expected = case.setup(base, work).replace(f"{work}/", "")  # the CLI runs in `work`: relative paths
    before = file_hashes(work)
    proc = run(["seqpipe", *case.command], work, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert lines and lines[-1].startswith("seqpipe: error: "), proc.stderr
    assert expected in lines[-1], f"{expected!r} not in {lines[-1]!r}"
    assert not (work / case.output).exists(), f"{case.output} was written"
    after = file_hashes(work)
    assert {k: v for k, v in after.items() if k in before} == before, "an existing file changed"
    assert set(after) - set(before) <= {"models/bandwidth/train.log"}, set(after) - set(before)
    print(f"{case.id}: {lines[-1]}")
