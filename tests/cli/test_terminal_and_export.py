"""On a real terminal (a pty), `seqpipe train` draws tqdm bars and its log lines never land on a bar's
fragment; and `seqpipe export` writes a model.onnx that describes itself: copied alone to an empty
folder, a standalone script (onnx, onnxruntime and numpy only; the repository not importable) reads
the metadata, standardises raw input, runs it and reads the output back to `seqpipe predict`'s numbers."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import sysconfig
import termios
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import copy_repo, run, run_env, tiny_overrides

LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (INFO|WARNING|ERROR) ")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository copy with tiny params in which bandwidth and ice_type were trained, bandwidth
    under a pty: (the copy, what that terminal showed)."""
    root = copy_repo(tmp_path_factory.mktemp("terminal") / "repo", tiny_overrides())
    for model in ("bandwidth", "ice_type"):
        for stage in ("download", "preprocess"):
            run(["seqpipe", stage, model], root)
    run(["seqpipe", "train", "ice_type"], root)
    return root, on_terminal(["seqpipe", "train", "bandwidth"], root)


def on_terminal(cmd: list[str], cwd: Path, timeout: float = 300) -> str:
    """Run `cmd` with stdin, stdout and stderr on a 40x120 pty; everything it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(cmd, cwd=cwd, env={**run_env(cwd), "TERM": "xterm"}, stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1.0)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:    # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    assert proc.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


def screen(stream: str) -> list[str]:
    """The lines a terminal shows for `stream`: carriage return, newline, cursor up/down and erase to
    end of line, which is what tqdm uses (other escape sequences are dropped)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(stream):
        escape = re.match(r"\x1b\[(\d*)([A-Za-z])", stream[i:])
        if escape:
            count = int(escape[1] or 1)
            if escape[2] == "A":
                row = max(0, row - count)
            elif escape[2] == "B":
                row += count
            elif escape[2] == "K":
                del rows[row][col:]
            i += escape.end()
        else:
            char = stream[i]
            i += 1
            if char == "\r":
                col = 0
            elif char == "\n":
                row, col = row + 1, 0
            else:
                line = rows[row]
                line.extend(" " * (col - len(line) + 1))
                line[col] = char
                col += 1
        rows.extend([] for _ in range(row + 1 - len(rows)))
    return ["".join(r).rstrip() for r in rows]


def test_log_lines_on_a_terminal_are_whole_lines(trained: tuple[Path, str]) -> None:
    _, shown = trained
    assert "epoch/s" in shown or "batch/s" in shown or "it/s" in shown, shown   # tqdm drew bars
    lines = screen(shown)
    logs = [line for line in lines if LOG_LINE.search(line)]
    assert any("bandwidth: epoch 2/2 train_loss" in line for line in logs), lines
    glued = [line for line in logs if not LOG_LINE.match(line) or "|" in line or "/s]" in line]
    assert not glued, "log line on a progress bar:\n" + "\n".join(glued)


# -I -S: no PYTHON* variables, no current folder, no .pth files (the venv's editable install of seqpipe
# is one); the venv's packages (onnx, onnxruntime, numpy) are added by hand
PACKAGES = f"import sys\nsys.path.append({sysconfig.get_paths()['purelib']!r})\n"
STANDALONE = PACKAGES + r'''
import csv, json
import numpy as np, onnx, onnxruntime as ort

meta = {p.key: p.value for p in onnx.load("model.onnx").metadata_props}
session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
scaler = json.loads(meta["seqpipe.scaler"])
mean, std = np.asarray(scaler["mean"]), np.asarray(scaler["std"])
if meta["seqpipe.model"] == "bandwidth":
    with open(sys.argv[1], newline="") as fh:
        rows = list(csv.DictReader(fh))
    features, window = json.loads(meta["seqpipe.features"]), int(meta["seqpipe.window"])
    raw = np.array([[float(r[c]) for c in features] for r in rows])
    x = ((raw - mean) / std).astype(np.float32)
    x = np.stack([x[i:i + window] for i in range(len(x) - window + 1)])
    y = session.run(None, {"x": x})[0]
    index = scaler["target_index"]
    out = y * std[index] + mean[index]
else:   # ice_type: (bands, rows, cols) patches stored as .npy by the test
    raw = np.load(sys.argv[1]).astype(np.float32)
    x = ((raw - mean.astype(np.float32)[None, :, None, None]) / std.astype(np.float32)[None, :, None, None])
    logits = session.run(None, {"x": x.astype(np.float32)})[0]
    out = np.exp(logits - logits.max(1, keepdims=True))
    out /= out.sum(1, keepdims=True)
assert not [m for m in sys.modules if m.split(".")[0] in ("seqpipe", "torch")]
print(json.dumps({"targets": json.loads(meta["seqpipe.targets"]), "out": out.tolist(), "meta": meta}))
'''


def standalone(onnx_file: Path, raw_input: Path, folder: Path) -> dict:
    """Copy ONLY model.onnx (and the raw input) into `folder` and run STANDALONE there, isolated."""
    folder.mkdir()
    shutil.copy(onnx_file, folder / "model.onnx")
    shutil.copy(raw_input, folder / raw_input.name)
    (folder / "standalone.py").write_text(STANDALONE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    check = subprocess.run([sys.executable, "-I", "-S", "-c", PACKAGES + "import onnxruntime\nimport seqpipe"],
                           cwd=folder, env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "No module named 'seqpipe'" in check.stderr, "the repository is importable"
    proc = subprocess.run([sys.executable, "-I", "-S", "standalone.py", raw_input.name], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_exported_model_describes_itself(trained: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = trained
    proc = run(["seqpipe", "export", "bandwidth"], root)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    for key in ("model", "features", "targets", "window", "scaler", "input", "output", "units", "fingerprint",
                "model_file_sha256", "seqpipe_version", "git_commit"):
        assert f"  seqpipe.{key}: " in proc.stdout, (key, proc.stdout)
    raw = root / "data/raw/bandwidth/bandwidth.csv"
    run(["seqpipe", "predict", "bandwidth", "--input", str(raw), "--output", str(tmp_path / "forecast.csv")], root)
    result = standalone(root / "models/bandwidth/model.onnx", raw, tmp_path / "alone")
    meta = result["meta"]
    assert meta["seqpipe.model"] == "bandwidth" and meta["seqpipe.git_commit"] == head  # models/ and data/ ignored
    assert meta["seqpipe.model_file_sha256"] == _sha256(root / "models/bandwidth/model.pt")
    assert meta["seqpipe.seqpipe_version"] == run(["seqpipe", "--version"], root).stdout.split()[1]
    assert json.loads(meta["seqpipe.units"])["rtt_ms"] == "ms"
    assert json.loads(meta["seqpipe.stats"])["window"] == 8 == int(meta["seqpipe.window"])  # tiny params
    with open(tmp_path / "forecast.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = np.array([[float(r[t]) for t in result["targets"]] for r in rows])
    assert expected.shape == np.shape(result["out"]) and len(expected) > 300
    np.testing.assert_allclose(result["out"], expected, atol=2e-3, rtol=1e-4)


def test_exported_raster_model_describes_itself(trained: tuple[Path, str], tmp_path: Path) -> None:
    """ice_type: per-band standardisation from the metadata, softmax of the logits = predict's p_<class>."""
    import rasterio

    root, _ = trained
    run(["seqpipe", "export", "ice_type"], root)
    patches = root / "data/raw/ice_type/patches"
    run(["seqpipe", "predict", "ice_type", "--input", str(patches), "--output", str(tmp_path / "types.csv")], root)
    with open(tmp_path / "types.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    stack = []
    for row in rows:
        with rasterio.open(patches / row["file"]) as src:
            stack.append(src.read())
    np.save(tmp_path / "patches.npy", np.stack(stack))
    result = standalone(root / "models/ice_type/model.onnx", tmp_path / "patches.npy", tmp_path / "alone")
    assert result["targets"] == ["open_water", "thin_ice", "thick_ice"]
    expected = np.array([[float(r[f"p_{c}"]) for c in result["targets"]] for r in rows])
    np.testing.assert_allclose(result["out"], expected, atol=2e-4)
    assert [result["targets"][k] for k in np.argmax(result["out"], 1)] == [r["predicted"] for r in rows]


def _sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()
