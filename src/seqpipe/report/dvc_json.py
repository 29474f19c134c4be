"""DVC's and git's answers as data: `dvc ... --json` run with this Python's DVC, and revision names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from seqpipe.errors import SeqpipeError, first_line

WORKSPACE = "workspace"   # DVC's name for the uncommitted working tree in its JSON


class UsageError(SeqpipeError):
    """A command-line argument that is wrong before any work starts (a BASE that is no commit): exit code 2,
    as argparse's own errors."""

    exit_code = 2


def dvc_run(*args: str) -> tuple[Any, list[str]]:
    """Run `dvc ARGS --json` in the current folder: its JSON and the warnings it printed (DVC exits 0 when
    a metrics or plots file cannot be loaded, and says so on stderr). A failure is a SeqpipeError carrying
    DVC's own error line."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUTF8": "1"}   # UTF-8 JSON in any locale
    cmd = [sys.executable, "-m", "dvc", *args, "--json"]
    proc = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", env=env)
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    if proc.returncode != 0:
        errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR:")]
        why = errors[0] if errors else (lines[-1] if lines else f"exit code {proc.returncode}")
        raise SeqpipeError(f"dvc {' '.join(args[:2])}: {why}")
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise SeqpipeError(f"dvc {' '.join(args[:2])}: output is not JSON ({first_line(exc)})") from None
    return data, [ln.removeprefix("WARNING:").strip() for ln in lines if "failed to load" in ln]


def dvc_json(*args: str) -> Any:
    """`dvc ARGS --json`, its JSON only."""
    return dvc_run(*args)[0]


def short_sha(rev: str) -> str:
    """The abbreviated commit of `rev` (the workspace: of HEAD), '' when git does not know it."""
    commit = f"{'HEAD' if rev == WORKSPACE else rev}^{{commit}}"
    proc = subprocess.run(["git", "rev-parse", "--short", commit], capture_output=True, encoding="utf-8",
                          errors="replace")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def describe(rev: str) -> str:
    """`rev` with its commit: 'main (1a2b3c4)', 'workspace (on 1a2b3c4)'."""
    sha = short_sha(rev)
    if rev == WORKSPACE and sha:
        return f"{rev} (on {sha})"
    return f"{rev} ({sha})" if sha and sha != rev else rev


def require_commit(rev: str, what: str = "BASE") -> None:
    """A UsageError unless the current folder is a git repository in which `rev` names a commit."""
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], capture_output=True,
                            encoding="utf-8", errors="replace")
    if inside.returncode != 0:
        raise UsageError(f"{os.getcwd()} is not a git repository (run from the project root)")
    if not rev or not short_sha(rev):
        raise UsageError(f"{what} '{rev}' is not a commit in this repository (a branch from a remote needs "
                         "'git fetch' first)")
