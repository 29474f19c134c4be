"""Faults that really happen to a pipeline: `dvc repro` killed (SIGKILL, SIGTERM, Ctrl-C's SIGINT to
its process group) during train, download and preprocess, and damaged checkpoints. The rerun must
resume or redo the work and end with exactly the outputs of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from seqpipe.io import sha256_file
from tests.conftest import file_hashes, lock_outs, run, run_env, run_folder, tiny_overrides, truncate, write_params

# bandwidth, tiny network, but enough epochs that `dvc repro` is still training after the first checkpoint
TRAIN = {**tiny_overrides("bandwidth"), "models.bandwidth.download.synthetic.n_rows": 1500,
         "models.bandwidth.train.epochs": 12, "models.bandwidth.train.early_stop_patience": 12,
         "models.bandwidth.train.num_threads": 1, "device": "cpu"}
# crop_ndvi large enough that its download and preprocess each run for a few seconds
DATA = {**tiny_overrides("crop_ndvi"), "models.crop_ndvi.download.synthetic.width": 256,
        "models.crop_ndvi.download.synthetic.height": 256, "models.crop_ndvi.preprocess.max_pixels": 20000}


def repro_until(repo: Path, target: str, ready: Callable[[], bool], sig: signal.Signals,
                timeout: float = 180) -> subprocess.CompletedProcess:
    """Start `dvc repro <target>` in its own process group, wait until `ready()`, then deliver `sig` to
    the whole group (as a terminal's Ctrl-C or a container stop does) and wait for it to end."""
    proc = subprocess.Popen(["dvc", "repro", target], cwd=repo, env=run_env(repo), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"dvc repro ended before the fault could be injected:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, "the stage never reached the point to interrupt"
        time.sleep(0.02)
    os.killpg(proc.pid, sig)
    out, _ = proc.communicate(timeout=120)
    _wait_group_gone(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _wait_group_gone(pgid: int, timeout: float = 60) -> None:
    """The stage's own process (seqpipe) may outlive dvc by a moment (saving a checkpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} still running {timeout} s after the signal")


def leftovers(folder: Path) -> list[Path]:
    """Temp files/folders of atomic writes (`.NAME.XXXX.tmp`) anywhere under `folder`."""
    return sorted(p for p in folder.rglob(".*.tmp")) if folder.exists() else []


def checkpoint_ready(repo: Path) -> Callable[[], bool]:
    return lambda: bool(list(repo.glob("models/bandwidth/checkpoints/*/last.pt")))


@pytest.mark.parametrize("sig", [signal.SIGKILL,
                                 pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)], ids=lambda s: s.name)
def test_repro_killed_during_train_resumes_to_identical_metrics(repo_copy: Path, sig: signal.Signals) -> None:
    repo = repo_copy
    write_params(repo / "params.yaml", {**tiny_overrides(), **TRAIN})
    run(["dvc", "repro", "preprocess-bandwidth"], repo)
    killed = repro_until(repo, "evaluate-bandwidth", checkpoint_ready(repo), sig)
    assert killed.returncode != 0, killed.stdout
    assert not (repo / "models/bandwidth/model.pt").exists()

    resumed = run(["dvc", "repro", "evaluate-bandwidth"], repo)
    last = run_folder(repo, "bandwidth") / "last.pt"
    assert f"resuming from {last.relative_to(repo)}" in resumed.stdout + resumed.stderr, resumed.stdout
    assert not leftovers(repo / "models"), leftovers(repo / "models")
    interrupted_metrics = (repo / "metrics/bandwidth.json").read_bytes()
    card = (repo / "models/bandwidth/model_card.json").read_bytes()

    # the same stages uninterrupted, from no checkpoint at all
    run(["seqpipe", "train", "bandwidth", "--fresh"], repo)
    run(["dvc", "repro", "evaluate-bandwidth"], repo)
    assert (repo / "metrics/bandwidth.json").read_bytes() == interrupted_metrics
    assert (repo / "models/bandwidth/model_card.json").read_bytes() == card  # nothing in it says "resumed"
    assert json.loads(run(["dvc", "status", "--json", "evaluate-bandwidth"], repo).stdout) == {}


def processed_ready(repo: Path, stage: str) -> Callable[[], bool]:
    """True once the stage is mid-way: download's temp folder holds a file (it writes date by date);
    preprocess's temp folder exists (it computes inside it and writes its arrays in the last moment,
    too short a window to hit reliably)."""
    if stage == "download":
        parent = repo / "data" / "raw"
        return lambda: any(p.is_file() for tmp in parent.glob(".crop_ndvi.*.tmp") for p in tmp.rglob("*"))
    return lambda: any((repo / "data" / "processed").glob(".crop_ndvi.*.tmp"))


@pytest.mark.parametrize("stage", ["download", pytest.param("preprocess", marks=pytest.mark.slow)])
def test_repro_killed_during_data_stage_leaves_nothing_and_reruns_identically(repo_copy: Path, stage: str) -> None:
    repo = repo_copy
    write_params(repo / "params.yaml", {**tiny_overrides(), **DATA})
    if stage == "preprocess":
        run(["dvc", "repro", "download-crop_ndvi"], repo)
    out = repo / "data" / ("raw" if stage == "download" else "processed") / "crop_ndvi"
    killed = repro_until(repo, "preprocess-crop_ndvi", processed_ready(repo, stage), signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists(), sorted(out.rglob("*"))   # dvc removed the old output; nothing partial came back

    run(["dvc", "repro", "preprocess-crop_ndvi"], repo)
    assert not leftovers(repo / "data"), leftovers(repo / "data")
    stages = ("download-crop_ndvi", "preprocess-crop_ndvi")
    after_kill = lock_outs(repo, *stages)
    files = file_hashes(repo / "data", repo)

    run(["dvc", "repro", "--force", *stages], repo)   # the uninterrupted run
    assert lock_outs(repo, *stages) == after_kill
    assert file_hashes(repo / "data", repo) == files


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder where tiny bandwidth has been downloaded, preprocessed and trained."""
    root = tmp_path_factory.mktemp("trained")
    write_params(root / "params.yaml", {**tiny_overrides("bandwidth"), "device": "cpu"})
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "bandwidth"], root)
    return root


def _largest_record(path: Path) -> tuple[int, int, int]:
    """(offset of the local header, offset of the bytes, size) of the zip's largest tensor record (stored)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    assert info.compress_type == zipfile.ZIP_STORED and info.file_size >= 128, info
    return info.header_offset, info.header_offset + 30 + name_len + extra_len, info.file_size


def _damage_zip_header(path: Path) -> None:
    """Overwrite the zip's local header of the largest tensor record: the archive no longer reads."""
    data = bytearray(path.read_bytes())
    header, _, _ = _largest_record(path)
    data[header:header + 30] = b"\xff" * 30
    path.write_bytes(bytes(data))


def _flip_weights(path: Path) -> None:
    """Flip 64 bytes inside the largest tensor's data: the zip still reads (torch checks no CRC there),
    so only the checkpoint's content digest can tell."""
    data = bytearray(path.read_bytes())
    _, start, size = _largest_record(path)
    middle = start + size // 2 - 32
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, problem", [
    (truncate, "unreadable checkpoint"),
    (_damage_zip_header, "unreadable checkpoint"),
    (_flip_weights, "corrupted checkpoint (content does not match its sha256)"),
], ids=["truncated", "zip-header", "weights-flipped"])
def test_damaged_checkpoint_is_named_and_fresh_starts_over(trained: Path, damage: Callable[[Path], None],
                                                           problem: str) -> None:
    last = run_folder(trained, "bandwidth") / "last.pt"
    damage(last)
    model_before = sha256_file(trained / "models/bandwidth/model.pt")
    failed = run(["seqpipe", "train", "bandwidth"], trained, check=False)
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert lines[-1].startswith(f"seqpipe: error: {last.relative_to(trained)}: {problem}"), lines
    assert lines[-1].endswith("use --fresh to start over"), lines[-1]
    assert sha256_file(trained / "models/bandwidth/model.pt") == model_before   # nothing was overwritten

    fresh = run(["seqpipe", "train", "bandwidth", "--fresh"], trained)
    assert "resuming" not in fresh.stderr
    assert sha256_file(trained / "models/bandwidth/model.pt") == model_before   # same seed: the same model
