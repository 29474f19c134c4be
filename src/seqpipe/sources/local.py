"""Source `local`: a file or folder the user already has, copied into the raw folder as is.

Only regular files and folders are read. A symbolic link is refused wherever it is: the path itself,
a folder on the way to it (as written, below the repository root for a relative path) or anything
inside a folder, so nothing from elsewhere on the machine lands in data/raw/ (a DVC output that
`dvc push` uploads); so are FIFOs, sockets and devices, and a path that is or holds the pipeline's own
outputs. Everything is checked before anything is copied.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from seqpipe import layout
from seqpipe.errors import SeqpipeError, environment_error
from seqpipe.params import params_section

KEY = "download.local.path"
OUTPUTS = tuple(p.parent for p in (layout.raw_dir("-"), layout.processed_dir("-"), layout.model_dir("-")))


@params_section
class LocalParams:
    path: str  # a file or a folder; relative paths are taken from the repository root


def local_source(params: LocalParams, key: str = KEY) -> Path:
    """`params.path` as a Path once it and everything in it are checked (see the module docstring);
    errors name the path and `key`."""
    return _checked(params, key)[0]


def _checked(params: LocalParams, key: str) -> tuple[Path, list[Path]]:
    """The checked source path and, for a folder, its files (relative, sorted; one walk of the tree)."""
    if not params.path:
        raise SeqpipeError(f"{key}: empty; set it to your file or folder")
    source = Path(params.path).expanduser()
    check_path(source, key)
    return source, regular_files(source, key) if source.is_dir() else []


def check_path(source: Path, key: str = KEY) -> None:
    """Refuse a missing path, a link on the way to it, a special file, or the pipeline's own outputs."""
    parts, root = source.parts, Path.cwd()
    if not source.is_absolute():
        first = 0                   # every folder as written, from the repository root
    elif source.is_relative_to(root):
        first = len(root.parts)     # the folders below the repository root
    else:
        first = len(parts) - 1      # elsewhere on the machine: the named file or folder only
    for end in range(first, len(parts)):
        _refuse_link(Path(*parts[: end + 1]), key)
    if not source.exists():
        raise SeqpipeError(f"{source}: not found ({key})")
    _refuse_special(source, key)
    here = source.resolve()
    for output in OUTPUTS:
        out = output.resolve()
        if here.is_relative_to(out) or out.is_relative_to(here):
            raise SeqpipeError(f"{source}: {'is inside' if here.is_relative_to(out) else 'holds'} "
                               f"the pipeline's own output folder {output}/ ({key}: name your own data, e.g. "
                               "data/local/<model>/)")


def regular_files(folder: Path, key: str = KEY) -> list[Path]:
    """The files below `folder` (relative, sorted); a link or a special file anywhere in it is refused."""
    def unreadable(exc: OSError) -> None:
        raise environment_error(exc) or SeqpipeError(f"{exc.filename}: cannot read ({exc.strerror}; {key})")

    files = []
    for root, dirs, names in os.walk(folder, onerror=unreadable):
        for name in sorted(dirs + names):
            _refuse_link(Path(root, name), key)
            _refuse_special(Path(root, name), key)
        files += [Path(root, name).relative_to(folder) for name in names]
    return sorted(files)


def copy_local(params: LocalParams, target_name: str | None, out_dir: Path,
               required: tuple[str, ...] = ()) -> dict:
    """Copy `params.path` into `out_dir` (a file as `target_name`, a folder's files as they are). A folder
    must hold `required` (default: `target_name`), checked first so the error names the user's folder."""
    source, files = _checked(params, KEY)
    if target_name is None and not source.is_dir():
        raise SeqpipeError(f"{source}: not a folder ({KEY} must name a folder of this model's files)")
    if source.is_dir():
        missing = [n for n in required or ((target_name,) if target_name else ())
                   if not (source / n).is_file()]
        if missing:   # e.g. the default folder data/local/<model>/ still holding only its README
            raise SeqpipeError(f"{source}: no {', '.join(missing)} in this folder ({KEY}: put "
                               f"{'them' if len(missing) > 1 else 'it'} there, or set the path to your data)")
        for name in files:
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, out_dir / name)
    else:
        shutil.copyfile(source, out_dir / (target_name or source.name))
    return {"path": str(source), "synthetic": False}


def _refuse_link(path: Path, key: str) -> None:
    if path.is_symlink():
        raise SeqpipeError(f"{shown(path)}: a symbolic link (to {shown(os.readlink(path))}); links "
                           f"are refused so that nothing from elsewhere lands in data/raw/ ({key}: copy the "
                           f"file or folder there instead of linking it)")


def _refuse_special(path: Path, key: str) -> None:
    mode = path.lstat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
                stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device"}.get(stat.S_IFMT(mode), "not a regular file")
        raise SeqpipeError(f"{shown(path)}: {kind}, not a regular file or folder ({key}: only files and "
                           "folders are copied)")


def shown(path: str | Path) -> str:
    """A path for a one-line message: as is when printable, else escaped (a name may hold a newline)."""
    return str(path) if str(path).isprintable() else ascii(str(path))
