"""Shared fixtures: tiny params, a prepared working folder, and a temp copy of the repository."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from seqpipe import pipelines
from seqpipe.io import sha256_file
from seqpipe.params import Params, load_params, set_dotted

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "tests" / "tiny_params.yaml").read_text()) or {}
BIN = Path(sys.executable).parent

# git (and `dvc exp`, which commits) needs an identity; a fresh CI machine may have none.
for _var, _value in (("GIT_AUTHOR_NAME", "seqpipe tests"), ("GIT_AUTHOR_EMAIL", "tests@seqpipe.invalid"),
                     ("GIT_COMMITTER_NAME", "seqpipe tests"), ("GIT_COMMITTER_EMAIL", "tests@seqpipe.invalid")):
    os.environ.setdefault(_var, _value)


def tiny_overrides(*models: str) -> dict:
    """Dotted overrides from tests/tiny_params.yaml for `models` (default: every model folder).
    An entry is optional: a model without one runs with params.yaml as it is."""
    known = pipelines.names()
    unknown = [m for m in models if m not in known]
    assert not unknown, f"tiny_overrides: unknown model(s) {unknown} (known: {known})"
    out: dict = {}
    for name in models or known:
        out.update(TINY.get(name) or {})
    return out


def write_params(path: Path, overrides: dict) -> None:
    """params.yaml of the repository with dotted `overrides` applied."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in overrides.items():
        set_dotted(raw, key, value)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def run_env(root: Path) -> dict[str, str]:
    """Environment for subprocesses: the venv's tools first, the copy's sources importable."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(root / "src" if (root / "src").exists() else REPO / "src")
    env.pop("DVC_EXP_NAME", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=run_env(cwd), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def signal_when_exists(cmd: list[str], cwd: Path, path: Path, sig: int, timeout: float = 120
                       ) -> subprocess.CompletedProcess:
    """Start `cmd`, send it `sig` once `path` (a glob: e.g. the first epoch's checkpoint,
    `models/m/checkpoints/*/last.pt`) exists, wait for its end."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=run_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + timeout
    while not glob.glob(str(path)):
        assert proc.poll() is None and time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def run_folder(root: Path, model: str) -> Path:
    """The one checkpoint folder (models/MODEL/checkpoints/FINGERPRINT/) the train runs in `root` wrote."""
    folders = [p for p in (root / "models" / model / "checkpoints").glob("*") if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def checkpoint_folder(root: Path, model: str) -> Path:
    """Where `seqpipe train MODEL` in `root` keeps its checkpoints, as --validate-only reports it."""
    proc = run(["seqpipe", "train", model, "--validate-only"], root)
    return root / re.search(r"checkpoints=(\S+?),", proc.stderr).group(1)


def error_lines(text: str) -> list[str]:
    """The `seqpipe: error:` lines of a CLI's stderr."""
    return [line for line in text.splitlines() if line.startswith("seqpipe: error:")]


def file_hashes(path: Path, root: Path | None = None) -> dict[str, str]:
    """sha256 of `path` (a file) or of every file under it, by POSIX path relative to `root` (default: `path`)."""
    files = [path] if path.is_file() else sorted(path.rglob("*"))
    return {f.relative_to(path if root is None else root).as_posix(): sha256_file(f) for f in files if f.is_file()}


def lock_outs(repo: Path, *stages: str) -> dict[str, str]:
    """The md5 that dvc.lock records for each output of `stages`, by output path."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for stage in stages for out in lock[stage]["outs"]}


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to its first `keep` part (a download or write broken off midway)."""
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder with tiny params.yaml, set as the current directory (stages use relative paths)."""
    write_params(tmp_path / "params.yaml", tiny_overrides())
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tiny_params(workdir: Path) -> Params:
    return load_params(workdir / "params.yaml")


def copy_repo(dest: Path, overrides: dict) -> Path:
    """The repository's tracked and new files copied to `dest`, params.yaml with `overrides`, committed
    as a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    write_params(dest / "params.yaml", overrides)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The repository's tracked and new files copied to a temp folder, as a fresh git repo with tiny params."""
    return copy_repo(tmp_path / "repo", tiny_overrides())


def exp_show(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json` flattened to {name: {"params": ..., "metrics": {path: data}}}."""
    out = {}
    for baseline in json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout):
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                out[rev["name"]] = {
                    "rev": rev["rev"],
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": {path: m["data"] for path, m in data["metrics"].items()},
                }
    return out
