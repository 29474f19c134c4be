"""What surrounds a run, through the real CLI and API: standard streams (a pipe whose reader has gone, a
full stdout, a closed stderr), the C locale with non-ASCII paths, SIGTERM/SIGHUP outside training, input
files that are not what their name or role says (a text .csv.gz, a folder, a FIFO) and model files that
are empty, truncated or no zip. Each ends in one line (or, for the pipe, quietly), the conventional exit
code, no crash log and no temp file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import seqpipe
from seqpipe.checkpoint import CheckpointError
from seqpipe.errors import SeqpipeError, first_line
from tests.conftest import REPO, error_lines, run, run_env, tiny_overrides, write_params

SIGNAL = REPO / "examples" / "freq_filter_signal.csv"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny params, the repository's dvc.yaml (it holds non-ASCII text), freq_filter
    trained and bandwidth downloaded."""
    folder = tmp_path_factory.mktemp("streams")
    write_params(folder / "params.yaml", tiny_overrides())
    shutil.copy(REPO / "dvc.yaml", folder / "dvc.yaml")
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "freq_filter"], folder)
    run(["seqpipe", "download", "bandwidth"], folder)
    return folder


def launch(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, unset: tuple[str, ...] = (),
           **popen: object) -> subprocess.Popen:
    """Start `cmd` with its own TMPDIR (a crash log would land there), `env` added and `unset` removed,
    stdout and stderr captured as bytes unless given."""
    tmp = cwd / "tmpdir"
    tmp.mkdir(exist_ok=True)
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    environment = {**run_env(cwd), "TMPDIR": str(tmp), **(env or {})}
    for name in unset:
        environment.pop(name, None)
    return subprocess.Popen(cmd, cwd=cwd, env=environment, **popen)


def finish(proc: subprocess.Popen, cwd: Path) -> tuple[int, str, str]:
    """Wait for `proc`: (exit code, stdout, stderr), after checking that it left no crash log."""
    out, err = proc.communicate(timeout=120)
    assert not list((cwd / "tmpdir").glob("seqpipe-crash-*")), "a crash log was written"
    decode = lambda data: (data or b"").decode("utf-8", "backslashreplace")  # noqa: E731
    return proc.returncode, decode(out), decode(err)


def one_error(stderr: str, *fragments: str) -> str:
    """The single `seqpipe: error:` line of `stderr`, holding every fragment; no traceback."""
    lines = error_lines(stderr)
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    return lines[0]


# ---- standard streams -------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["list"], ["completion", "bash"], ["predict", "--help"]])
def test_a_reader_gone_from_stdout_ends_the_run_quietly_with_141(command: list[str], root: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)   # no reader at all: the first write to stdout fails with EPIPE
    try:
        proc = launch(["seqpipe", *command], root, stdout=writer)
    finally:
        os.close(writer)
    code, _, err = finish(proc, root)
    assert code == 128 + signal.SIGPIPE and err == "", err


def full_device(folder: Path) -> Path:
    """A character device like /dev/full (every write fails with ENOSPC), made in `folder` where
    the file system allows it, else /dev/full itself."""
    with contextlib.suppress(OSError):
        os.mknod(folder / "full", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        return folder / "full"
    if not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no full device: /dev/full is not a character device here")
    return Path("/dev/full")


@pytest.mark.parametrize("command", [["list"], ["completion", "bash"], ["--help"]])
def test_a_full_stdout_is_one_error_line_naming_stdout(command: list[str], root: Path, tmp_path: Path) -> None:
    with open(full_device(tmp_path), "wb") as full:
        code, _, err = finish(launch(["seqpipe", *command], root, stdout=full), root)
    assert code == 3, err
    one_error(err, "seqpipe: error: stdout: no space left")


def test_a_closed_stderr_still_runs_and_exits_with_the_right_code(root: Path) -> None:
    """`2>&-`: the run goes on, its messages are dropped (never sent to stdout or into an output file)."""
    cases = [(["list"], 0), (["preprocess", "bandwidth"], 0), (["predict", "freq_filter", "--output", "x.csv"], 1),
             (["--params", "missing.yaml", "check-params"], 1)]
    for command, expected in cases:
        proc = launch(["sh", "-c", 'exec "$@" 2>&-', "sh", "seqpipe", *command], root)
        code, out, _ = finish(proc, root)
        assert code == expected, (command, code)
        assert "seqpipe:" not in out and "INFO" not in out, out
    stats = root / "data/processed/bandwidth/stats.json"
    assert stats.read_text(encoding="utf-8").startswith("{"), "a log line landed in an output"


def test_the_c_locale_runs_list_and_predict_with_non_ascii_paths(root: Path) -> None:
    """LC_ALL=C without UTF-8 mode: every text file is read as UTF-8 (dvc.yaml holds '²'), and a
    non-ASCII path is written and printed back as the bytes it came as."""
    env, unset = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}, ("PYTHONIOENCODING",)
    source = root / "entrée.csv"
    shutil.copy(SIGNAL, source)
    code, out, err = finish(launch(["seqpipe", "list"], root, env, unset), root)
    assert code == 0 and "freq_filter" in out, err
    proc = launch(["seqpipe", "predict", "freq_filter", "--input", source.name, "--output", "prévision_ö.csv"],
                  root, env, unset)
    code, out, err = finish(proc, root)
    assert code == 0 and "Traceback" not in err, err
    assert out.startswith("wrote prévision_ö.csv:"), out
    assert (root / "prévision_ö.csv").read_text(encoding="utf-8").startswith("signal,1hz,")
    code, _, err = finish(launch(["seqpipe", "--params", "manquée.yaml", "check-params"], root, env, unset), root)
    assert code == 1
    one_error(err, "manquée.yaml")


# ---- signals outside training --------------------------------------------------------------------------

def _signal_once_written(cmd: list[str], cwd: Path, folder: Path, sig: signal.Signals,
                         output: str) -> tuple[int, str]:
    """Start `cmd`, send `sig` as soon as something new appears in `folder` (an atomic writer's temp),
    then wait: (exit code, stderr). Fails if the command ends first. Afterwards `folder` holds what it
    held before, or that and the whole `output` (a signal that came during an import waits for its end,
    and a short run may finish writing by then), but never a temp file."""
    before = set(folder.iterdir())
    proc = launch(cmd, cwd)
    deadline = time.monotonic() + 120
    while not set(folder.iterdir()) - before:
        assert proc.poll() is None, f"ended before it wrote anything: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    proc.send_signal(sig)
    code, _, err = finish(proc, cwd)
    assert set(folder.iterdir()) - before <= {folder / output}, "a temp file was left"
    return code, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_during_a_data_stage_is_one_line_128_plus_signal_and_no_temp(sig: signal.Signals,
                                                                              root: Path) -> None:
    processed = root / "data/processed"
    shutil.rmtree(processed / "bandwidth", ignore_errors=True)
    code, err = _signal_once_written(["seqpipe", "preprocess", "bandwidth"], root, processed, sig, "bandwidth")
    assert code == 128 + sig, err
    if (processed / "bandwidth").exists():   # then whole
        assert (processed / "bandwidth/stats.json").read_text(encoding="utf-8").endswith("}\n")
    assert err.splitlines()[-1] == f"seqpipe: terminated by {sig.name}", err


@pytest.mark.slow
def test_sigterm_during_predict_is_one_line_143_and_no_temp(root: Path) -> None:
    work = root / "predict_signal"
    work.mkdir()
    t = np.arange(40_000) / 50.0
    np.savetxt(work / "long.csv", np.sin(2 * np.pi * 3 * t), header="signal", comments="", fmt="%.5f")
    cmd = ["seqpipe", "predict", "freq_filter", "--input", "predict_signal/long.csv", "--output",
           "predict_signal/out.csv"]
    code, err = _signal_once_written(cmd, root, work, signal.SIGTERM, "out.csv")
    assert not (work / "out.csv").exists(), "the signal came as the output was written, after every import"
    assert code == 143 and err.splitlines()[-1] == "seqpipe: terminated by SIGTERM", err


# ---- input files that are not what their name or role says ---------------------------------------------

def _text_named(suffix: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / f"signal{suffix}"
        shutil.copy(SIGNAL, path)
        return path
    return make


def _folder(folder: Path) -> Path:
    (folder / "signal.csv").mkdir()
    return folder / "signal.csv"


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "signal.csv")
    return folder / "signal.csv"


@pytest.mark.parametrize(("make", "says"), [
    (_text_named(".csv.gz"), "read as gzip because the name ends in .gz"),
    pytest.param(_fifo, "is a FIFO (named pipe), not a regular file", marks=pytest.mark.slow),
    pytest.param(_text_named(".zip"), "read as zip because the name ends in .zip", marks=pytest.mark.slow),
    pytest.param(_folder, "is a folder, not a file", marks=pytest.mark.slow),
], ids=["text-as-gzip", "fifo", "text-as-zip", "folder"])
def test_an_input_that_is_not_the_file_its_name_says_is_one_line_naming_it(
        make: Callable[[Path], Path], says: str, root: Path, tmp_path: Path) -> None:
    path = make(tmp_path)
    proc = run(["seqpipe", "predict", "freq_filter", "--input", str(path), "--output", str(tmp_path / "o.csv")],
               root, check=False, timeout=120)
    assert proc.returncode == 1
    one_error(proc.stderr, f"{path}: {says}")
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.slow
def test_a_geotiff_input_that_is_a_fifo_or_a_folder_is_one_line_naming_it(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", tiny_overrides("ice_change"))
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "ice_change"], tmp_path)
    good = sorted((tmp_path / "data/raw/ice_change").rglob("*.tif"))[0]
    os.mkfifo(tmp_path / "fifo.tif")
    (tmp_path / "folder.tif").mkdir()
    for before, after, says in ((tmp_path / "fifo.tif", good, "fifo.tif: is a FIFO (named pipe)"),
                                (good, tmp_path / "folder.tif", "folder.tif: is a folder, not a file")):
        proc = run(["seqpipe", "predict", "ice_change", "--before", str(before), "--after", str(after),
                    "--output", "change.tif"], tmp_path, check=False, timeout=120)
        assert proc.returncode == 1
        one_error(proc.stderr, says)
        assert not (tmp_path / "change.tif").exists()


# ---- model files and empty messages -----------------------------------------------------------------------

BAD_MODEL_FILES = {"empty": lambda good: b"", "text": lambda good: b"not a model\n",
                   "truncated": lambda good: good[:4096]}


@pytest.mark.parametrize("kind", BAD_MODEL_FILES)
def test_a_model_file_that_is_empty_truncated_or_no_zip_is_one_error_for_load(kind: str, root: Path,
                                                                              tmp_path: Path) -> None:
    model = root / "models/freq_filter/model.pt"
    assert zipfile.is_zipfile(model)
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(BAD_MODEL_FILES[kind](model.read_bytes()))
    with pytest.raises(CheckpointError, match=rf"^{path}: unreadable checkpoint \([^\n]+\)$"):
        seqpipe.load(path)


@pytest.mark.slow
def test_an_empty_model_file_is_one_line_for_predict_and_export(root: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    proc = run(["seqpipe", "predict", "freq_filter", "--model-file", str(tmp_path / "empty.pt"), "--input",
                str(SIGNAL), "--output", str(tmp_path / "o.csv")], root, check=False)
    assert proc.returncode == 1
    one_error(proc.stderr, "empty.pt: unreadable checkpoint (an empty file, 0 bytes)")

    work = tmp_path / "export"
    (work / "models/freq_filter").mkdir(parents=True)
    shutil.copy(root / "params.yaml", work / "params.yaml")
    (work / "models/freq_filter/model.pt").write_bytes(b"")
    proc = run(["seqpipe", "export", "freq_filter"], work, check=False)
    assert proc.returncode == 1
    one_error(proc.stderr, "models/freq_filter/model.pt: unreadable checkpoint (an empty file")


def test_an_exception_with_an_empty_message_is_named_by_its_type() -> None:
    assert first_line(EOFError()) == "EOFError"
    assert first_line(SeqpipeError("  \n")) == "SeqpipeError"
    assert first_line(ValueError("first\nsecond")) == "first"
