"""The runtime folder of the live-run registry and the core slots (issue 29, class 14): $XDG_RUNTIME_DIR
first, else a fallback in the system temp folder created 0700; a folder of another user's, writable by
others, or holding anything but plain files is refused in one line (never a hang on a planted FIFO); a
process removes its own entry when it exits."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from seqpipe import live_runs
from seqpipe.live_runs import RuntimeFolderError
from tests.conftest import REPO, error_lines, run_env, tiny_overrides, write_params

REGISTER = "from seqpipe import live_runs; live_runs.register(); print(live_runs.folder())"
HOLD_CORES = "from seqpipe import live_runs; live_runs.hold_cores(1, 2, lambda: print('waiting', flush=True))"


@pytest.fixture
def no_runtime_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No SEQPIPE_RUNTIME_DIR nor XDG_RUNTIME_DIR; the system temp folder is `tmp_path`/tmp."""
    monkeypatch.delenv("SEQPIPE_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))   # this process read TMPDIR once already
    return tmp_path / "tmp" / f"seqpipe-runs-{os.getuid()}"


def python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with this environment (the temp folder is read once per process)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def test_the_fallback_runtime_folder_is_created_private(no_runtime_env: Path) -> None:
    proc = python(REGISTER)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == no_runtime_env
    assert stat.S_IMODE(no_runtime_env.lstat().st_mode) == 0o700
    assert list(no_runtime_env.glob("*.run")) == []   # the process removed its own entry at exit


def test_xdg_runtime_dir_is_preferred_when_it_is_usable(no_runtime_env: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert live_runs.folder() == xdg / "seqpipe"
    assert stat.S_IMODE((xdg / "seqpipe").stat().st_mode) == 0o700
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert live_runs.folder() == no_runtime_env


@pytest.mark.parametrize("plant", ["writable-by-others", "another-users", "a-link", "a-fifo-slot", "a-subfolder",
                                   "a-link-entry"])
def test_an_unsafe_runtime_folder_is_refused_in_one_line(plant: str, no_runtime_env: Path, tmp_path: Path) -> None:
    folder = no_runtime_env
    if plant == "a-link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir(mode=0o700)
    if plant == "writable-by-others":
        folder.chmod(0o777)
    elif plant == "another-users":
        if os.getuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        os.chown(folder, 65534, 65534)
    elif plant == "a-fifo-slot":
        os.mkfifo(folder / "core-0.slot")
    elif plant == "a-subfolder":
        (folder / "1234.run").mkdir()
    elif plant == "a-link-entry":
        (folder / "1234.run").symlink_to("/dev/zero")
    for code in (REGISTER, HOLD_CORES):   # never a hang on the FIFO (the old open blocked for ever)
        proc = python(code, timeout=30)
        assert proc.returncode != 0 and "RuntimeFolderError" in proc.stderr, proc.stderr
        assert str(folder) in proc.stderr.strip().splitlines()[-1]


def test_a_command_refuses_an_unsafe_runtime_folder_before_any_work(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    write_params(tmp_path / "params.yaml", tiny_overrides("bandwidth"))
    os.mkfifo(runtime / "core-0.slot")
    proc = subprocess.run(["seqpipe", "train", "bandwidth", "--validate-only"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**run_env(tmp_path), "SEQPIPE_RUNTIME_DIR": str(runtime)})
    assert proc.returncode == 1 and error_lines(proc.stderr) == [
        f"seqpipe: error: {runtime}/core-0.slot: not a plain file in the runtime folder (live trainings, core "
        "slots); remove it, or set SEQPIPE_RUNTIME_DIR to a folder of your own"], proc.stderr


def test_a_process_removes_its_own_entry_at_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQPIPE_RUNTIME_DIR", str(tmp_path))
    proc = python(REGISTER)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []
