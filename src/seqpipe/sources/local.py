"""Source `local`: a file or folder the user already has, copied into the raw folder as is."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from seqpipe.errors import SeqpipeError


@dataclass(frozen=True)
class LocalParams:
    path: str  # a file or a folder; relative paths are taken from the repository root


def local_source(params: LocalParams) -> Path:
    """`params.path` as a Path, refusing an empty or missing path."""
    source = Path(params.path).expanduser()
    if not params.path:
        raise SeqpipeError("download.local.path: empty; set it to your file or folder")
    if not source.exists():
        raise SeqpipeError(f"{source}: not found (download.local.path)")
    return source


def copy_local(params: LocalParams, target_name: str | None, out_dir: Path, required: tuple[str, ...] = ()) -> dict:
    """Copy `params.path` into `out_dir` (a file as `target_name`, a folder's files as they are). A folder
    must hold `required` (default: `target_name`), checked first so the error names the user's folder."""
    source = local_source(params)
    if source.is_dir():
        missing = [n for n in required or ((target_name,) if target_name else ()) if not (source / n).is_file()]
        if missing:   # e.g. the default folder data/local/<model>/ still holding only its README
            raise SeqpipeError(f"{source}: no {', '.join(missing)} in this folder (download.local.path: put "
                               f"{'them' if len(missing) > 1 else 'it'} there, or set the path to your data)")
        shutil.copytree(source, out_dir, dirs_exist_ok=True)
    else:
        shutil.copyfile(source, out_dir / (target_name or source.name))
    return {"path": str(source), "synthetic": False}
