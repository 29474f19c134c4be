"""Nothing unpickles untrusted data: checkpoints load weights-only, .npy files without pickles, and
the source tree has no other way in (checked on its syntax tree, so a new unsafe call fails here)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from seqpipe import checkpoint
from seqpipe.errors import SeqpipeError
from seqpipe.io import load_npy
from tests.conftest import REPO


class _Exploit:
    """Unpickling this runs a shell command (what a hostile checkpoint or .npy would carry)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def test_hostile_checkpoint_is_refused_without_running_code(tmp_path: Path) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "last.pt"
    torch.save({"model": "bandwidth", "state_dict": {}, "extra": _Exploit(marker)}, path)
    with pytest.raises(checkpoint.CheckpointError, match=r"last\.pt: unreadable checkpoint"):
        checkpoint.load(path)
    assert not marker.exists()


def test_hostile_npy_is_refused_without_running_code(tmp_path: Path) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "x_train.npy"
    np.save(path, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(SeqpipeError, match=r"x_train\.npy: not a plain numeric \.npy"):
        load_npy(path)
    assert not marker.exists()


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """(dotted name, node) of every call in `tree`, e.g. ('torch.load', ...)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                parts.append(func.id)
            out.append((".".join(reversed(parts)), node))
    return out


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


UNSAFE = {"pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "marshal.loads",
          "eval", "exec", "tarfile.open", "zipfile.ZipFile", "shutil.unpack_archive"}


def test_source_tree_has_no_unsafe_deserialisation() -> None:
    problems = []
    for path in sorted((REPO / "src").rglob("*.py")):
        for name, call in _calls(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(REPO)}:{call.lineno}"
            if name == "torch.load" and _keyword(call, "weights_only") is not True:
                problems.append(f"{where}: torch.load without weights_only=True")
            if name in ("np.load", "numpy.load") and _keyword(call, "allow_pickle") is not False:
                problems.append(f"{where}: np.load without allow_pickle=False (use seqpipe.io.load_npy)")
            if name in UNSAFE or name.endswith(".extractall"):
                problems.append(f"{where}: {name} (unpickles, evaluates or extracts untrusted data)")
    assert not problems, "\n".join(problems)
