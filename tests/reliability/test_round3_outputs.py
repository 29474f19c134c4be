"""Outputs that are not plain new files (issue 29, classes 1-3): a FIFO, a device or a link to stdout is
written into and never replaced, a link to a file updates its target, a path ending in '/' names a
folder (refused by every command that takes --output); a concurrent writer's temp is kept while it
lives and removed once its writer is killed; temp names fit the file system whatever the output's name."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqpipe import io
from seqpipe.errors import EnvError, SeqpipeError
from seqpipe.io import atomic_dir, atomic_path
from seqpipe.plotting import write_csv
from tests.conftest import error_lines, run, run_env
from tests.reliability.bad_inputs import good

IN = "data/raw/bandwidth/bandwidth.csv"
HOLDER = """import sys
from seqpipe.io import atomic_dir, atomic_path
kind, path = sys.argv[1], sys.argv[2]
with (atomic_path if kind == "file" else atomic_dir)(path) as tmp:
    (tmp if kind == "file" else tmp / "part").write_text("first writer\\n", encoding="utf-8")
    print(tmp, flush=True)
    sys.stdin.readline()
"""


@pytest.fixture(scope="module")
def trained(base: Path) -> Path:
    """`base` with tiny bandwidth trained (the real stages, once per module)."""
    good(base, "preprocess", "bandwidth")
    if not (base / "models/bandwidth/model.pt").exists():
        run(["seqpipe", "train", "bandwidth"], base)
    return base


def seqpipe(args: list[str], cwd: Path, runtime: Path) -> subprocess.CompletedProcess:
    """The real CLI, its live-run registry in `runtime` (so that its entry can be checked gone)."""
    return subprocess.run(["seqpipe", *args], cwd=cwd, env={**run_env(cwd), "SEQPIPE_RUNTIME_DIR": str(runtime)},
                          capture_output=True, text=True, timeout=300)


def predict(trained: Path, output: str | Path, runtime: Path) -> subprocess.CompletedProcess:
    return seqpipe(["predict", "bandwidth", "--input", IN, "--output", str(output)], trained, runtime)


def refused(proc: subprocess.CompletedProcess, expected: str, code: int = 1) -> None:
    """One `seqpipe: error:` line holding `expected`, exit `code`, no traceback or crash log."""
    assert proc.returncode == code, proc.stderr
    assert len(error_lines(proc.stderr)) == 1 and expected in error_lines(proc.stderr)[0], proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    """Started writers (see `hold`), killed after the test if still running."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def hold(procs: list[subprocess.Popen], kind: str, path: Path) -> tuple[subprocess.Popen, Path]:
    """A separate process midway through an atomic write of `path` ("file" or "dir"): its temp written,
    not yet renamed; it finishes when a line is written to its stdin."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, kind, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=run_env(path.parent))
    procs.append(proc)
    return proc, Path(proc.stdout.readline().strip())


# ---- class 1: an output that is not a regular file ---------------------------------------------------

def test_an_output_that_is_a_fifo_is_written_into_not_replaced(trained: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "forecast.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    proc = predict(trained, fifo, tmp_path / "runtime")
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received[0].startswith(b"timestamp,throughput_mbps,") and received[0].count(b"\n") > 300
    assert temps(tmp_path) == [] and list((tmp_path / "runtime").glob("*.run")) == []  # its own entry removed


def test_an_output_linked_to_stdout_is_written_to_the_stream(trained: Path, tmp_path: Path) -> None:
    link = tmp_path / "out.csv"
    link.symlink_to("/proc/self/fd/1")
    proc = predict(trained, link, tmp_path / "runtime")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("timestamp,throughput_mbps,") and f"wrote {link}" in proc.stdout
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_an_output_pipe_whose_reader_leaves_ends_the_run_quietly(trained: Path, tmp_path: Path) -> None:
    """`--output /dev/stdout | head -c 10`: the broken pipe of stdout's class, exit 141 and no message."""
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    proc = subprocess.run(["seqpipe", "predict", "bandwidth", "--input", IN, "--output", "/dev/stdout"], cwd=trained,
                          env={**run_env(trained), "SEQPIPE_RUNTIME_DIR": str(tmp_path / "runtime")},
                          stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=300)
    reader.stdin.close()
    reader.wait(timeout=60)
    assert proc.returncode == 141 and error_lines(proc.stderr) == [], proc.stderr
    assert "Traceback" not in proc.stderr and "crash" not in proc.stderr


def test_an_output_that_is_a_device_is_written_into_and_its_errors_named(trained: Path, tmp_path: Path) -> None:
    refused(predict(trained, "/dev/full", tmp_path / "runtime"), "/dev/full: no space left on the device", code=3)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with atomic_path("/dev/null") as tmp:
        tmp.write_text("discarded\n", encoding="utf-8")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize(("command", "ending"), [
    (["predict", "bandwidth", "--input", IN], "/"),
    (["report"], "/."),
    pytest.param(["export", "bandwidth"], "/", marks=pytest.mark.slow),
], ids=lambda c: c[0] if isinstance(c, list) else "")
def test_an_output_path_ending_in_a_slash_names_a_folder_for_every_command(
        command: list[str], ending: str, trained: Path, tmp_path: Path) -> None:
    given = f"{tmp_path}/newdir{ending}"
    proc = seqpipe([*command, "--output", given], trained, tmp_path / "runtime")
    refused(proc, f"{given}: ends in ")
    assert "so it names a folder; --output takes a file path" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["runtime"])


def test_an_output_link_to_a_file_updates_the_target_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "data" / "real.csv"
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_csv(link, {"x": [1.0, 2.0]})
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "x\n1\n2\n"
    assert temps(tmp_path) == [] and temps(target.parent) == []
    target.chmod(0o444)   # e.g. a DVC cache file: never modified through a link, even by root
    with pytest.raises(EnvError, match=r"link.csv: a link to .*real.csv, which is read-only"):
        write_csv(link, {"x": [3.0]})
    assert target.read_text(encoding="utf-8") == "x\n1\n2\n"


def test_a_fifo_output_without_a_reader_is_refused_after_a_wait_and_a_link_loop_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io, "FIFO_WAIT_S", 0.3)
    os.mkfifo(tmp_path / "f")
    with pytest.raises(SeqpipeError, match="f: a FIFO that no process opened for reading in 0.3 s"):
        write_csv(tmp_path / "f", {"x": [1.0]})
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(SeqpipeError, match="a: cannot be written"):
        write_csv(tmp_path / "a", {"x": [1.0]})
    assert (tmp_path / "a").is_symlink() and stat.S_ISFIFO((tmp_path / "f").lstat().st_mode)


def test_an_output_that_is_a_socket_or_a_folder_is_refused(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
        with pytest.raises(SeqpipeError, match="s: is a socket"):
            write_csv(tmp_path / "s", {"x": [1.0]})
    (tmp_path / "d").mkdir()
    with pytest.raises(SeqpipeError, match="d: is a folder"):
        write_csv(tmp_path / "d", {"x": [1.0]})
    with pytest.raises(SeqpipeError, match="an output: an empty path"):
        write_csv("", {"x": [1.0]})
    monkeypatch.chdir(tmp_path)   # '-' is refused, not written as a file of that name in the current folder
    with pytest.raises(SeqpipeError, match="'-' is no file path here"):
        write_csv("-", {"x": [1.0]})
    assert not (tmp_path / "-").exists()
    assert stat.S_ISSOCK((tmp_path / "s").lstat().st_mode) and temps(tmp_path) == []


# ---- class 2: a live writer's temp is not stale -----------------------------------------------------

def test_a_live_writers_temp_survives_a_second_write_of_the_same_output(
        trained: Path, tmp_path: Path, holder: list[subprocess.Popen]) -> None:
    out = tmp_path / "forecast.csv"
    first, first_tmp = hold(holder, "file", out)
    proc = predict(trained, out, tmp_path / "runtime")   # the second writer finishes first
    assert proc.returncode == 0, proc.stderr
    assert first_tmp.exists() and out.read_bytes().startswith(b"timestamp,")
    first.communicate("\n", timeout=60)
    assert first.returncode == 0
    assert out.read_text(encoding="utf-8") == "first writer\n" and temps(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_killed_writers_temp_is_removed_but_a_live_ones_kept(
        kind: str, tmp_path: Path, holder: list[subprocess.Popen]) -> None:
    out = tmp_path / "out"
    killed, killed_tmp = hold(holder, kind, out)
    live, live_tmp = hold(holder, kind, out)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed_tmp.exists()
    with (atomic_path if kind == "file" else atomic_dir)(out) as tmp:
        (tmp if kind == "file" else tmp / "part").write_text("second\n", encoding="utf-8")
    assert not killed_tmp.exists() and live_tmp.exists()
    live.communicate("\n", timeout=60)
    assert live.returncode == 0 and temps(tmp_path) == []
    assert (out if kind == "file" else out / "part").read_text(encoding="utf-8") == "first writer\n"


# ---- class 3: temp names within the file system's limit ---------------------------------------------

def test_an_output_name_at_the_file_system_limit_is_written(trained: Path, tmp_path: Path) -> None:
    name = "f" * 251 + ".csv"   # 255 bytes: the longest legal name
    proc = predict(trained, tmp_path / name, tmp_path / "runtime")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / name).read_bytes().startswith(b"timestamp,") and temps(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_the_temp_of_a_long_named_output_is_found_as_stale(
        kind: str, tmp_path: Path, holder: list[subprocess.Popen]) -> None:
    out = tmp_path / ("é" * 127)   # 254 bytes in UTF-8
    killed, killed_tmp = hold(holder, kind, out)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed_tmp.exists() and len(os.fsencode(killed_tmp.name)) <= 255
    with (atomic_path if kind == "file" else atomic_dir)(out) as tmp:
        (tmp if kind == "file" else tmp / "part").write_text("second\n", encoding="utf-8")
    assert temps(tmp_path) == [] and out.exists()
