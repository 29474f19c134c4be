"""Bad inputs of the CLI and the core, table-driven like test_bad_inputs.py: params.yaml (seed range,
duplicated keys, deep nesting, not UTF-8, a folder), `predict --output` over something that matters,
model files without a digest or stats, and the environment (a read-only or full file system, exit
code 3). Then the exit codes themselves, and the last-resort net for a bug: one line and a log file."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, run, run_folder
from tests.reliability.bad_inputs import Case, check_refused, copy_raw, fake_checkpoint, good

MOUNTS: list[Path] = []   # tmpfs mounts made by a case's setup, unmounted after the test


@pytest.fixture(autouse=True)
def unmount() -> Iterator[None]:
    yield
    while MOUNTS:
        subprocess.run(["umount", str(MOUNTS.pop())], check=False)


def _tmpfs(folder: Path, *options: str) -> Path:
    """A 16 KiB tmpfs at `folder` (root only: skips the test where mounting is not permitted)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(["size=16k", *options]), "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    MOUNTS.append(folder)
    return folder


def _fill(folder: Path) -> None:
    """Fill the file system of `folder` to the last byte."""
    with open(folder / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def trained(base: Path) -> Path:
    """models/bandwidth of `base`, trained (tiny params) the first time."""
    folder = base / "models/bandwidth"
    if not (folder / "model.pt").exists():
        good(base, "preprocess", "bandwidth")
        run(["seqpipe", "train", "bandwidth"], base)
    return folder


def _model(base: Path, work: Path, checkpoints: bool = True) -> None:
    """A trained bandwidth model, its processed data and dvc.yaml in the case's folder."""
    shutil.copytree(trained(base), work / "models/bandwidth",
                    ignore=None if checkpoints else shutil.ignore_patterns("checkpoints"))
    shutil.copytree(good(base, "preprocess", "bandwidth"), work / "data/processed/bandwidth")
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")


def _predict_into(expected: str, prepare: Callable[[Path], None] = lambda work: None
                  ) -> Callable[[Path, Path], str]:
    def setup(base: Path, work: Path) -> str:
        _model(base, work)
        copy_raw(base, work, "bandwidth")
        prepare(work)
        return expected
    return setup


def _params_text(edit: Callable[[str], str]) -> Callable[[Path, Path], str]:
    def setup(base: Path, work: Path) -> str:
        path = work / "params.yaml"
        path.write_text(edit(path.read_text()))
        return "params.yaml: "
    return setup


def _duplicate_lr(text: str) -> str:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("lr:"))
    return "\n".join(lines[: at + 1] + [lines[at]] + lines[at + 1:]) + "\n"


def _latin1_params(base: Path, work: Path) -> str:
    path = work / "params.yaml"
    path.write_bytes(path.read_bytes() + "# café\n".encode("latin-1"))
    return f"params.yaml: line {len(path.read_text(encoding='latin-1').splitlines())}: not UTF-8 text"


def _without_digest(name: str, scale: float = 1.0) -> Callable[[Path, Path], str]:
    """A trained model file with its sha256 key removed (and its weights scaled), at models/bandwidth/`name`."""
    def setup(base: Path, work: Path) -> str:
        _model(base, work)
        copy_raw(base, work, "bandwidth")
        payload = torch.load(work / "models/bandwidth/model.pt", weights_only=True)
        del payload["sha256"]
        payload["state_dict"] = {k: v * scale for k, v in payload["state_dict"].items()}
        torch.save(payload, work / "models/bandwidth" / name)
        return f"models/bandwidth/{name}: has no sha256 digest"
    return setup


def _lone_checkpoint(base: Path, work: Path) -> str:
    """A best.pt copied out of its run, with no model.pt of that run beside it."""
    _model(base, work, checkpoints=False)
    copy_raw(base, work, "bandwidth")
    (work / "models/bandwidth/model.pt").unlink()
    (work / "saved").mkdir()
    shutil.copy(run_folder(base, "bandwidth") / "best.pt", work / "saved/best.pt")
    return "saved/best.pt: a training checkpoint (epoch"


def _foreign_model(base: Path, work: Path) -> str:
    copy_raw(base, work, "bandwidth")
    fake_checkpoint(work / "other.pt", model="freq_filter")
    return "other.pt: holds model 'freq_filter', not 'bandwidth'"


def _read_only(folder: str, expected: str) -> Callable[[Path, Path], str]:
    def setup(base: Path, work: Path) -> str:
        _model(base, work)
        copy_raw(base, work, "bandwidth")
        _tmpfs(work / folder, "ro")
        return expected
    return setup


def _full(folder: str, expected: str) -> Callable[[Path, Path], str]:
    def setup(base: Path, work: Path) -> str:
        _model(base, work)
        copy_raw(base, work, "bandwidth")
        _fill(_tmpfs(work / folder))
        return expected
    return setup


IN = "data/raw/bandwidth/bandwidth.csv"
PREDICT = ["predict", "bandwidth", "--input", IN, "--output"]
OUT = "forecast.csv"   # never written by a refused case (the protected file itself is checked unchanged)
DL_BW = ["download", "bandwidth"]
KEEP = "; choose another --output, or pass --force"
CASES = [
    # params.yaml (#16, #18, and the ways the file itself can be wrong)
    Case("seed-negative", DL_BW, lambda b, w: "params.yaml: seed: must be in 0..2**32-1", "data/raw/bandwidth",
         {"seed": -1}),
    Case("seed-too-large", DL_BW, lambda b, w: "params.yaml: seed: must be in 0..2**32-1 (numpy and torch seeds), "
         "got 4294967296", "data/raw/bandwidth", {"seed": 2**32}, slow=True),
    Case("params-duplicated-key", DL_BW, lambda b, w: _params_text(_duplicate_lr)(b, w)
         + "not valid YAML: duplicated key 'lr' on line", "data/raw/bandwidth"),
    Case("params-nested-too-deeply", DL_BW, lambda b, w: _params_text(
        lambda text: "seed: " + "[" * 5000 + "]" * 5000 + "\n")(b, w) + "nested too deeply", "data/raw/bandwidth"),
    Case("params-not-utf8", DL_BW, _latin1_params, "data/raw/bandwidth"),
    Case("params-is-a-folder", ["--params", "conf", *DL_BW],
         lambda b, w: (w / "conf").mkdir() or "conf: is a folder; --params takes a params.yaml file",
         "data/raw/bandwidth"),
    # predict --output over what matters (#5), and outputs that cannot be written
    Case("predict-over-model-file", [*PREDICT, "models/bandwidth/model.pt"],
         _predict_into(f"models/bandwidth/model.pt: is the model file predict reads{KEEP} to overwrite it"), OUT),
    Case("predict-over-its-input", [*PREDICT, IN], _predict_into(f"{IN}: is an input of this predict{KEEP}"), OUT),
    Case("predict-over-params", [*PREDICT, "params.yaml"], _predict_into("params.yaml: is the params file"), OUT),
    Case("predict-over-dvc-yaml", [*PREDICT, "dvc.yaml"],
         _predict_into("dvc.yaml: is a DVC/git file of the repository"), OUT),
    Case("predict-over-dvc-lock", [*PREDICT, "dvc.lock"],
         _predict_into("dvc.lock: is a DVC/git file"), "dvc.lock", slow=True),
    Case("predict-over-checkpoint", [*PREDICT, "models/bandwidth/checkpoints/best.pt"],
         _predict_into("models/bandwidth/checkpoints/best.pt: is inside models/bandwidth, the model's folder"), OUT),
    Case("predict-into-dvc-output", [*PREDICT, "data/processed/bandwidth/x.csv"],
         _predict_into("data/processed/bandwidth/x.csv: is inside data/processed/bandwidth, a path DVC tracks"),
         "data/processed/bandwidth/x.csv"),
    Case("predict-over-metrics", [*PREDICT, "metrics/bandwidth.json"],
         _predict_into("metrics/bandwidth.json: is a path DVC tracks (dvc.yaml)"), "metrics/bandwidth.json"),
    Case("predict-output-is-a-folder", [*PREDICT, "out"],
         _predict_into("out: is a folder; --output takes a file path", lambda w: (w / "out").mkdir()), OUT),
    Case("predict-output-folder-missing", [*PREDICT, "nowhere/f.csv"],
         _predict_into("nowhere: folder of --output does not exist; create it first"), "nowhere/f.csv"),
    Case("export-over-model-file", ["export", "bandwidth", "--output", "models/bandwidth/model.pt"],
         _predict_into("models/bandwidth/model.pt: exists and is not an .onnx file"), "models/bandwidth/model.onnx"),
    Case("export-output-is-a-folder", ["export", "bandwidth", "--output", "models"],
         _predict_into("models: is a folder; --output takes a file path"), "models/bandwidth/model.onnx", slow=True),
    # model files (#13, #14, and another model's file)
    Case("predict-model-without-digest", [*PREDICT, OUT, "--model-file", "models/bandwidth/edited.pt"],
         _without_digest("edited.pt", -50.0), OUT),
    Case("evaluate-model-without-digest", ["evaluate", "bandwidth"], _without_digest("model.pt", -50.0),
         "metrics/bandwidth.json"),
    Case("predict-checkpoint-without-its-run", [*PREDICT, OUT, "--model-file", "saved/best.pt"], _lone_checkpoint,
         OUT),
    Case("predict-model-of-another-model", [*PREDICT, OUT, "--model-file", "other.pt"], _foreign_model, OUT),
    # the environment (#15): exit code 3, one line naming the path
    Case("predict-output-read-only", [*PREDICT, "ro/f.csv"],
         _read_only("ro", "ro/f.csv: read-only file system"), "ro/f.csv"),
    Case("evaluate-metrics-read-only", ["evaluate", "bandwidth"],
         _read_only("metrics", "metrics: read-only file system"), "metrics/bandwidth.json"),
    Case("download-data-read-only", DL_BW, _read_only("data/raw", "data/raw: read-only file system"),
         "data/raw/bandwidth/manifest.json", slow=True),
    Case("predict-output-disk-full", [*PREDICT, "full/f.csv"],
         _full("full", "full/f.csv: no space left on the device"), "full/f.csv"),
    Case("evaluate-metrics-disk-full", ["evaluate", "bandwidth"],
         _full("metrics", "metrics/bandwidth.json: no space left on the device"), "metrics/bandwidth.json"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES])
def test_bad_input_is_one_error_line(case: Case, base: Path, tmp_path: Path) -> None:
    check_refused(case, base, tmp_path)


@pytest.mark.parametrize(("command", "read_only", "code"), [
    (["download", "bandwidth", "--bogus"], False, 2),
    (["download", "bandwidht"], False, 1),
    ([*PREDICT, "ro/f.csv"], True, 3),
])
def test_exit_codes(command: list[str], read_only: bool, code: int, base: Path, tmp_path: Path) -> None:
    shutil.copy(base / "params.yaml", tmp_path / "params.yaml")
    _model(base, tmp_path)
    copy_raw(base, tmp_path, "bandwidth")
    if read_only:
        _tmpfs(tmp_path / "ro", "ro")
    proc = run(["seqpipe", *command], tmp_path, check=False)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_exit_codes(tmp_path: Path) -> None:
    out = run(["seqpipe", "--help"], tmp_path).stdout
    for code in ("1 ", "2 ", "3 ", "130", "143"):
        assert f"\n  {code}" in out, out


def test_unexpected_error_is_one_line_and_a_log(base: Path, tmp_path: Path) -> None:
    """A bug in a model folder (planted in a copy of the sources) is one line naming a log file with the
    traceback; --debug prints the traceback instead."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "src/seqpipe/pipelines/bandwidth/preprocess.py", "a") as fh:
        fh.write("\n\ndef preprocess(*args, **kwargs):\n    return {}['planted bug']\n")
    shutil.copy(base / "params.yaml", tmp_path / "params.yaml")
    copy_raw(base, tmp_path, "bandwidth")
    proc = run(["seqpipe", "preprocess", "bandwidth"], tmp_path, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("seqpipe: ")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    match = re.fullmatch(r"seqpipe: error: internal error: KeyError: 'planted bug'; traceback in (\S+)", lines[-1])
    assert match, proc.stderr
    log = Path(match[1])
    try:
        text = log.read_text()
        assert "Traceback (most recent call last)" in text and "planted bug" in text and "preprocess.py" in text
    finally:
        log.unlink()
    assert not (tmp_path / "data/processed/bandwidth").exists()

    debug = run(["seqpipe", "--debug", "preprocess", "bandwidth"], tmp_path, check=False)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == ("seqpipe: error: internal error: KeyError: 'planted bug'; "
                                            "traceback printed above")


@pytest.mark.parametrize("checkpoint", ["best.pt", "last.pt"])
def test_predict_accepts_a_checkpoint_of_the_run_that_wrote_model_pt(checkpoint: str, base: Path,
                                                                     tmp_path: Path) -> None:
    """A checkpoint holds no preprocessing stats; those of model.pt apply when the fingerprints match.
    best.pt holds model.pt's weights, so the forecasts are the same."""
    shutil.copy(base / "params.yaml", tmp_path / "params.yaml")
    _model(base, tmp_path)
    copy_raw(base, tmp_path, "bandwidth")
    run(["seqpipe", *PREDICT, "from_model.csv"], tmp_path)
    model_file = (run_folder(tmp_path, "bandwidth") / checkpoint).relative_to(tmp_path).as_posix()
    run(["seqpipe", *PREDICT, "from_checkpoint.csv", "--model-file", model_file], tmp_path)
    assert (tmp_path / "from_checkpoint.csv").read_text().count("\n") > 10
    if model_file.endswith("best.pt"):
        assert (tmp_path / "from_checkpoint.csv").read_text() == (tmp_path / "from_model.csv").read_text()


def test_force_and_trust_unverified_are_explicit_opt_ins(base: Path, tmp_path: Path) -> None:
    shutil.copy(base / "params.yaml", tmp_path / "params.yaml")
    _without_digest("unverified.pt")(base, tmp_path)
    run(["seqpipe", *PREDICT, "dvc.yaml", "--force"], tmp_path)
    assert (tmp_path / "dvc.yaml").read_text().startswith("timestamp,")
    run(["seqpipe", *PREDICT, "out.csv", "--model-file", "models/bandwidth/unverified.pt", "--trust-unverified"],
        tmp_path)
    assert (tmp_path / "out.csv").exists()
