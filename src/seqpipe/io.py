"""Atomic file output: every file is written to a temp file in its folder, then os.replace'd with the
mode the umask gives; disk-full, read-only and permission faults are one EnvError naming the output."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import glob
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seqpipe.errors import EnvError, SeqpipeError, environment_error, first_line
from seqpipe.process import signals_held


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path; when the block ends cleanly its content becomes `path`, on error it is removed.

    What `path` is decides how (see `output_target`): a regular file (or none yet) is replaced by the temp,
    written beside it, with mode 0666 less the umask; a symbolic link is followed and the regular file it
    ends at is replaced in its own folder (the link stays a link; a read-only target is refused); a FIFO,
    a character or block device (/dev/null, a terminal, /dev/stdout) is written into, never replaced,
    from a temp in the system temp folder (a FIFO waits up to FIFO_WAIT_S for a reader). A folder, a
    socket or a text ending in '/' is refused. Stale temps of killed writes of the same `path` are
    removed first, live ones of concurrent writes are kept (see `remove_stale_temps`). A full disk, a
    read-only file system or a denied permission is an EnvError naming `path` (exit code 3)."""
    kind, target = output_target(path, "an output")
    path = Path(path)
    folder = target.parent if kind == "replace" else Path(tempfile.gettempdir())
    stem = _temp_stem(folder, target.name) if kind == "replace" else STREAM_TEMP
    with signals_held() as held:   # a signal waits until the temp's clean-up below is armed
        try:
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(folder, stem)
            fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{os.getpid()}-", suffix=".tmp", dir=folder)
        except OSError as exc:
            _raise_environment(exc, path)
            raise
        tmp_path = Path(tmp)
        _hold(fd, tmp_path)
        try:
            held.release()
            yield tmp_path
            if kind == "replace":
                os.chmod(tmp_path, 0o666 & ~umask())
                os.replace(tmp_path, target)
            else:
                _write_into(target, tmp_path, path)
        except BaseException as exc:
            _raise_environment(exc, path, tmp_path)
            raise
        finally:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)
            _release(fd, tmp_path)


FIFO_WAIT_S = 10.0          # how long a FIFO given as an output may go without a reader
STREAM_TEMP = "seqpipe-output"  # the temps (in the system temp folder) of outputs written into a FIFO/device
# what a temp's name adds to its output's (pid_max 2**22, 8 random)
_TEMP_EXTRA = len("..4194304-abcdefgh.tmp")
_TEMP_PID = re.compile(r"\.(\d+)-[a-z0-9_]+\.tmp$")
_writing: set[Path] = set()   # this process's live temps (its own stale-temp sweeps leave them alone)


def output_target(path: str | Path, option: str = "--output") -> tuple[str, Path]:
    """What writing the file `path` means: ("replace", the regular file to replace atomically: `path`, or
    where its symbolic links end) or ("write", the FIFO or device to write into). A folder (also a text
    ending in '/'), a socket, or a link to a read-only file is a SeqpipeError naming `path` (and `option`)."""
    path = output_file(path, option)
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return "replace", path
    except OSError as exc:
        raise _cannot_write(exc, path) from None
    try:
        info = os.stat(path)
    except FileNotFoundError:  # a dangling link: the file it names is created
        return "replace", Path(os.path.realpath(path))
    except OSError as exc:   # a loop of links, a denied folder on the way
        raise _cannot_write(exc, path) from None
    if stat.S_ISDIR(info.st_mode):
        raise SeqpipeError(f"{path}: is a folder; {option} takes a file path")
    if stat.S_ISSOCK(info.st_mode):
        raise SeqpipeError(f"{path}: is a socket; the output must be a file, a FIFO or a device")
    if not stat.S_ISREG(info.st_mode):
        return "write", path
    if not stat.S_ISLNK(link.st_mode):
        return "replace", path
    real = Path(os.path.realpath(path))
    try:
        same = os.path.samestat(os.stat(real), info)
    except OSError:
        same = False
    if not same:   # e.g. /proc/PID/fd/N of a deleted file
        raise SeqpipeError(f"{path}: a link to a file that has no path of its own to replace; "
                           "write elsewhere")
    if not info.st_mode & 0o222 or not os.access(real, os.W_OK):  # a DVC cache file (0444): never replaced
        raise EnvError(f"{path}: a link to {real}, which is read-only; write elsewhere or remove the link")
    return "replace", real


def output_file(given: str | Path, option: str = "--output") -> Path:
    """`given` as the path of a file to write: a text that ends in '/' (or is '.', '..', or ends in '/.',
    '/..') names a folder and is refused, as is '-' (read as stdout by many tools), one rule for every
    --output."""
    text = os.fspath(given)
    if not text:
        raise SeqpipeError(f"{option}: an empty path; give a file path")
    if text == "-":   # not a file called '-' in the current folder, which is what writing it would make
        raise SeqpipeError(f"{option} -: '-' is no file path here; give a file path, or /dev/stdout for the "
                           "standard output")
    if text.endswith(os.sep) or os.path.basename(text) in ("", ".", ".."):
        raise SeqpipeError(f"{text}: ends in '{os.path.basename(text) or os.sep}', so it names a "
                           f"folder; {option} takes a file path")
    return Path(given)


def _cannot_write(exc: OSError, path: Path) -> SeqpipeError:
    """An OSError writing the output `path` as one line naming it (an EnvError for the environment's)."""
    problem = environment_error(exc, path)
    return problem or SeqpipeError(f"{path}: cannot be written ({exc.strerror or first_line(exc)})")


def _write_into(node: Path, tmp: Path, shown: Path) -> None:
    """Copy `tmp` into the FIFO or device `node` (opened without truncating or replacing it); a FIFO
    waits up to FIFO_WAIT_S for a reader. Errors name `shown`, the path the user gave."""
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            fd = os.open(node, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                if exc.errno == errno.ENXIO:
                    raise SeqpipeError(f"{shown}: a FIFO that no process opened for reading in "
                                       f"{FIFO_WAIT_S:g} s; start its reader first") from None
                raise _cannot_write(exc, shown) from None
            time.sleep(0.05)
    try:
        os.set_blocking(fd, True)
        with open(tmp, "rb") as src:
            while block := src.read(1 << 20):
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view):]
    except BrokenPipeError:   # the reader has gone: the CLI ends quietly with 141, as for its own stdout
        raise
    except OSError as exc:
        raise _cannot_write(exc, shown) from None
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | Path, name: str = "*") -> list[Path]:
    """Delete the `.<name>.*.tmp` files and folders (`name` as atomic_path shortens it) that atomic_path/
    atomic_dir leave when a process is killed (SIGKILL, power loss) before it could clean up; returns
    what was removed. A temp that a live process still writes is kept: each writer holds an flock on
    its temp, and its name carries the writer's pid (stale: the lock can be taken and that process is
    gone; a temp without a pid in its name, from an older seqpipe, goes by its lock alone)."""
    folder = Path(folder)
    pattern = "*" if name == "*" else glob.escape(_temp_stem(folder, name))
    stale = [path for path in sorted(folder.glob(f".{pattern}.*.tmp")) if _is_stale(path)]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
    return stale


def _is_stale(temp: Path) -> bool:
    """Whether `temp` is left by a writer that is gone (see remove_stale_temps); anything but a plain
    file or folder (a link, a FIFO), or one this user cannot open, is never taken for a temp."""
    if temp in _writing:
        return False
    try:
        fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # a file system without locks: the pid decides
            pass
    finally:
        os.close(fd)
    found = _TEMP_PID.search(temp.name)
    return found is None or not _alive(int(found.group(1)))


def _alive(pid: int) -> bool:
    """Whether a process `pid` exists (this process's own pid: its temps are in _writing)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _hold(fd: int, temp: Path) -> None:
    """Mark `temp` (open as `fd`) as written by this live process: an flock on it, and _writing."""
    _writing.add(temp)
    with contextlib.suppress(OSError):  # no locks on this file system: the pid in the name marks it live
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _release(fd: int, temp: Path) -> None:
    _writing.discard(temp)
    with contextlib.suppress(OSError):
        os.close(fd)


def _temp_stem(folder: Path, name: str) -> str:
    """The part of `name` a temp's name carries: `name`, or where a temp name would exceed the file
    system's name limit, its start and a digest of the whole (the same for every call)."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    room = limit - _TEMP_EXTRA
    if name == "*" or len(os.fsencode(name)) <= room:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    start = name
    while len(os.fsencode(start)) > room - len(digest) - 1:
        start = start[:-1]
    return f"{start}~{digest}"


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path` whole (mode 0777 less the umask),
    on error it is removed. Temp folders of an earlier, killed run for the same `path` are removed first,
    those of a live concurrent run are kept, as in atomic_path. Environment faults are EnvErrors naming
    `path`, as in atomic_path."""
    path = Path(path)
    with signals_held() as held:   # a signal waits until the temp's clean-up below is armed
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(path.parent, path.name)
            prefix = f".{_temp_stem(path.parent, path.name)}.{os.getpid()}-"
            tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
            fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            _raise_environment(exc, path)
            raise
        _hold(fd, tmp)
        try:
            held.release()
            yield tmp
            os.chmod(tmp, 0o777 & ~umask())
            with signals_held():   # the old output is never left moved aside
                if path.exists():   # the old folder moves aside to a temp name of its own, then goes
                    old = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
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
        finally:
            _release(fd, tmp)


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
        problem = environment_error(exc, shown) or SeqpipeError(f"{shown}: cannot write here "
                                                                f"({first_line(exc)})")
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
        raise environment_error(exc, path) or SeqpipeError(f"{path}: cannot read "
                                                           f"({first_line(exc)})") from None


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
        raise environment_error(exc, path) or SeqpipeError(f"{path}: cannot read "
                                                           f"({first_line(exc)})") from None
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


def load_npy(path: str | Path, mmap_mode: Literal["r+", "r", "w+", "c"] | None = None) -> np.ndarray:
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
