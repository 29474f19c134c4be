"""What the stages leave on disk: outputs whose modes follow the umask (0644/0755 under 022, not the
0600/0700 of mkstemp/mkdtemp), and no temp of a killed write surviving the next run of its stage."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_env, tiny_overrides, write_params

STAGES = ("download", "preprocess", "train", "evaluate")


def seqpipe(args: list[str], cwd: Path, umask: int) -> None:
    """The real CLI in a subprocess that starts with `umask`."""
    proc = subprocess.run(["seqpipe", *args], cwd=cwd, env=run_env(cwd), capture_output=True, text=True,
                          timeout=600, preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr


def modes(root: Path, *folders: str) -> dict[str, int]:
    """Permission bits of every file and folder under `folders`, by path relative to `root`."""
    paths = [p for folder in folders for p in [root / folder, *(root / folder).rglob("*")]]
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.lstat().st_mode) for p in paths}


def test_outputs_are_readable_by_group_and_others_under_umask_022(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", tiny_overrides("bandwidth"))
    for stage in STAGES:
        seqpipe([stage, "bandwidth"], tmp_path, 0o022)
    found = modes(tmp_path, "data", "models", "metrics", "plots")
    files = {k: v for k, v in found.items() if (tmp_path / k).is_file()}
    assert "models/bandwidth/model.pt" in files and "metrics/bandwidth.json" in files
    assert "data/processed/bandwidth/stats.json" in files
    assert [k for k in files if k.startswith("models/bandwidth/checkpoints/") and k.endswith("/best.pt")]
    assert {k: oct(v) for k, v in files.items() if v != 0o644} == {}
    assert {k: oct(v) for k, v in found.items() if k not in files and v != 0o755} == {}


def test_outputs_follow_a_stricter_umask(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", tiny_overrides("bandwidth"))
    for stage in ("download", "preprocess"):
        seqpipe([stage, "bandwidth"], tmp_path, 0o027)
    found = modes(tmp_path, "data")
    assert {k: oct(v) for k, v in found.items() if v not in (0o640, 0o750)} == {}
    assert found["data/raw/bandwidth"] == 0o750 and found["data/raw/bandwidth/bandwidth.csv"] == 0o640


@pytest.mark.parametrize("output", ["models/bandwidth/model.pt", "metrics/bandwidth.json",
                                    "models/bandwidth/model_card.json", "data/processed/bandwidth"])
def test_temps_of_a_killed_write_are_removed_by_the_next_run(tmp_path: Path, output: str) -> None:
    """A process SIGKILLed between writing a temp and renaming it leaves `.<name>.<random>.tmp` beside the
    output (no handler runs); the next run of the stage writing that output removes it, and only it."""
    write_params(tmp_path / "params.yaml", tiny_overrides("bandwidth"))
    for stage in STAGES:
        seqpipe([stage, "bandwidth"], tmp_path, 0o022)
    target = tmp_path / output
    stale = [target.with_name(f".{target.name}.k1ll3d.tmp"), target.with_name(f".{target.name}.zq8x_0a.tmp")]
    stale[0].write_bytes(b"half a file")
    stale[1].mkdir()
    (stale[1] / "part").write_bytes(b"half a folder")
    bystander = target.with_name(f".other{target.suffix}.k1ll3d.tmp")
    bystander.write_bytes(b"another output's temp")
    stage = "evaluate" if output.startswith("metrics") else "preprocess" if output.startswith("data") else "train"
    seqpipe([stage, "bandwidth", *(["--fresh"] if stage == "train" else [])], tmp_path, 0o022)
    assert [p.name for p in stale if p.exists()] == []
    assert target.exists() and bystander.exists()
