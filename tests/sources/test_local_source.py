"""Source `local` through the real CLI: a folder where bandwidth wants a file (accepted when it holds
bandwidth.csv, copied whole; refused otherwise with the previous raw data untouched), and everything in
a folder checked before anything is copied."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.conftest import file_hashes, run, tiny_overrides, write_params

LOCAL = {"models.bandwidth.download.source": "local", "models.bandwidth.download.local.path": "mine"}


def _synthetic_raw(work: Path) -> dict[str, str]:
    write_params(work / "params.yaml", tiny_overrides())
    run(["seqpipe", "download", "bandwidth"], work)
    write_params(work / "params.yaml", {**tiny_overrides(), **LOCAL})
    return file_hashes(work / "data/raw/bandwidth")


def test_a_folder_holding_the_csv_is_copied_whole(tmp_path: Path) -> None:
    raw = _synthetic_raw(tmp_path)
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    shutil.copy(tmp_path / "data/raw/bandwidth/bandwidth.csv", mine)
    (mine / "notes/README.md").write_text("where this CSV came from\n")
    run(["seqpipe", "download", "bandwidth"], tmp_path)
    manifest = json.loads((tmp_path / "data/raw/bandwidth/manifest.json").read_text())
    assert manifest["source"] == "local" and manifest["path"] == "mine"
    assert set(manifest["files"]) == {"bandwidth.csv", "notes/README.md"}
    assert manifest["files"]["bandwidth.csv"] == raw["bandwidth.csv"]


def test_a_refused_folder_leaves_the_previous_raw_data_as_it_was(tmp_path: Path) -> None:
    raw = _synthetic_raw(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "other.csv").write_text("a,b\n1,2\n")

    def refused(expected: str) -> None:
        proc = run(["seqpipe", "download", "bandwidth"], tmp_path, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.splitlines()[-1].startswith(f"seqpipe: error: {expected}"), proc.stderr
        assert file_hashes(tmp_path / "data/raw/bandwidth") == raw
        assert sorted(p.name for p in (tmp_path / "data/raw").iterdir()) == ["bandwidth"]   # no temp folder left

    refused("mine: no bandwidth.csv in this folder")                  # other files only
    (mine / "bandwidth.csv").mkdir()
    refused("mine: no bandwidth.csv in this folder")                  # a folder named bandwidth.csv
    (mine / "bandwidth.csv").rmdir()
    shutil.copy(tmp_path / "data/raw/bandwidth/bandwidth.csv", mine)
    os.mkfifo(mine / "z.pipe")
    refused("mine/z.pipe: a FIFO")                                     # the CSV, and a FIFO beside it


def test_a_link_deep_in_a_folder_is_refused_before_anything_is_copied(tmp_path: Path) -> None:
    _synthetic_raw(tmp_path)
    deep = tmp_path / "mine/a/b"
    deep.mkdir(parents=True)
    shutil.copy(tmp_path / "data/raw/bandwidth/bandwidth.csv", tmp_path / "mine")
    (deep / "key").symlink_to(Path.home())
    proc = run(["seqpipe", "download", "bandwidth"], tmp_path, check=False)
    assert proc.stderr.splitlines()[-1].startswith("seqpipe: error: mine/a/b/key: a symbolic link"), proc.stderr
    assert json.loads((tmp_path / "data/raw/bandwidth/manifest.json").read_text())["source"] == "synthetic"
