"""Atomic file output: every file is written to a temp file in its folder, then os.replace'd with the
mode the umask gives; disk-full, read-only and permission faults are one EnvError naming the output."""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.errors import EnvError, SeqpipeError, environment_error, first_line
from seqpipe.process import signals_held


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path` (mode 0666 less the umask), on
    error it is removed. Temps of an earlier, killed write of the same `path` are removed first. A full
    disk, a read-only file system or a denied permission is an EnvError naming `path` (exit code 3)."""
    path = Path(path)
    with signals_held() as held:   # a signal waits until the temp's clean-up below is armed
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(path.parent, path.name)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
        except OSError as exc:
            _raise_environment(exc, path)
            raise
        tmp_path = Path(tmp)
        try:
            held.release()
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~umask())
            os.replace(tmp_path, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)
            _raise_environment(exc, path, tmp_path)
            raise


def remove_stale_temps(folder: str | Path, name: str = "*") -> list[Path]:
    """Delete the `.<name>.*.tmp` files and folders that atomic_path/atomic_dir leave when a process is
    killed (SIGKILL, power loss) before it could clean up; returns what was removed."""
    pattern = "*" if name == "*" else glob.escape(name)
    stale = sorted(Path(folder).glob(f".{pattern}.*.tmp"))
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path` whole (mode 0777 less the umask),
    on error it is removed. Temp folders of an earlier, killed run for the same `path` are removed
    first. Environment faults are EnvErrors naming `path`, as in atomic_path."""
    path = Path(path)
    with signals_held() as held:   # a signal waits until the temp's clean-up below is armed
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(path.parent, path.name)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        except OSError as exc:
            _raise_environment(exc, path)
            raise
        try:
            held.release()
            yield tmp
            os.chmod(tmp, 0o777 & ~umask())
            with signals_held():   # the old output is never left moved aside
                if path.exists():
                    old = path.with_name(f".{path.name}.old")
                    shutil.rmtree(old, ignore_errors=True)
                    os.replace(path, old)
                    os.replace(tmp, path)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, path)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, EnvError) and str(tmp) in str(exc):  # a file written inside: name the output
                raise EnvError(str(exc).replace(str(tmp), str(path))) from exc
            _raise_environment(exc, path, tmp)
            raise


def _raise_environment(exc: BaseException, path: Path, tmp: Path | None = None) -> None:
    """Raise `exc` as an EnvError if it is a disk-full/read-only/permission OSError, naming `path` when the
    failed call named no file or one beside `path` or in the temp, else the file it names (an input)."""
    named = getattr(exc, "filename", None)
    if named is not None:
        named = Path(os.path.abspath(named))
        in_tmp = tmp is not None and Path(os.path.abspath(tmp)) in (named, *named.parents)
        named = None if in_tmp or named.parent == Path(os.path.abspath(path)).parent else named
    problem = environment_error(exc, named or path)
    if problem is not None:
        raise problem from exc


def check_writable(folder: str | Path) -> None:
    """Create and delete a file in `folder`, or in its nearest existing parent (nothing is left behind):
    a read-only or denied output folder is found before a stage works for hours. Raises EnvError (exit
    code 3) naming the folder tried."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    shown = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        problem = environment_error(exc, shown) or SeqpipeError(f"{shown}: cannot write here ({first_line(exc)})")
        raise problem from exc


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units, up to TiB)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while n >= 1024 and power < len(units) - 1:
        n, power = n / 1024, power + 1
    return f"{n:.0f} B" if power == 0 else f"{n:.1f} {units[power]}"


@functools.cache
def umask() -> int:
    """The process umask, read once (from /proc without changing it where Linux offers that)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain JSON types (NaN and infinities to null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):  # NaN and infinities are not JSON
        return None
    return obj


def write_json(path: str | Path, data: Any) -> None:
    """Write sorted, indented JSON atomically (stable bytes for stable hashes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(data), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    """A UTF-8 JSON file; missing, not a regular file, not UTF-8 or not JSON is one SeqpipeError naming it."""
    path = require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SeqpipeError(f"{path}: not UTF-8 text ({first_line(exc)})") from None
    except json.JSONDecodeError as exc:
        raise SeqpipeError(f"{path}: not valid JSON ({first_line(exc)})") from None
    except OSError as exc:
        raise environment_error(exc, path) or SeqpipeError(f"{path}: cannot read ({first_line(exc)})") from None


# What a path is when it is neither a regular file nor a folder (stat's file types).
_NODE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def require_file(path: str | Path) -> Path:
    """`path` when it is a regular file (or a link to one); otherwise one SeqpipeError naming it: not
    found, a folder, or another kind of node (reading a FIFO would wait for a writer, a device never
    ends). Permission and similar faults are EnvErrors."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise SeqpipeError(f"{path}: not found") from None
    except OSError as exc:
        raise environment_error(exc, path) or SeqpipeError(f"{path}: cannot read ({first_line(exc)})") from None
    if stat.S_ISDIR(mode):
        raise SeqpipeError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _NODE_KINDS if test(mode)), "a special file")
        raise SeqpipeError(f"{path}: is {kind}, not a regular file; save the data to a file and pass that")
    return path


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """np.save atomically (npy bytes are deterministic, unlike npz which stamps zip times)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array))


def load_npy(path: str | Path, mmap_mode: str | None = None) -> np.ndarray:
    """np.load of one .npy with pickles refused; a missing, damaged or object array is one SeqpipeError."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise SeqpipeError(f"{path}: not found") from None
    except (ValueError, OSError, EOFError) as exc:  # object arrays (pickles), bad headers, truncated data
        raise SeqpipeError(f"{path}: not a plain numeric .npy ({first_line(exc)})") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
