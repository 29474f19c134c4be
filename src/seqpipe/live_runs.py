"""A registry of the seqpipe trainings running on this machine right now, so that `num_threads: 0`
means "my fair share of the cores", not "every core" (several trainings at once: two clones'
`dvc repro`, `dvc queue start -j 2`, two test workers).

Each training holds an exclusive `flock` on its own file in a runtime folder for as long as its
process lives; the kernel drops the lock when the process ends, however it ends (kill -9 included),
so an entry whose lock can be taken is stale and is removed (a process that exits normally removes its
own). A process does not count itself or the
processes it was started by (torchrun's ranks and the `seqpipe train` that launched them are one run).

A training with a set thread count also holds that many core slots (`hold_cores`: one flock per core)
while it runs, and waits for them when other trainings hold them: two trainings that would each
use every core run one after the other instead of spinning against each other.

The folder is private (see `folder`): owned by this user, mode 0700, plain files only, every file opened
without following links or blocking, so that nobody else can plant a FIFO that hangs a training.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import os
import random
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seqpipe.errors import SeqpipeError

_held: list[int] = []   # the descriptors of this process's registration: open until it exits
_slots: list[int] = []  # the descriptors of the core slots this process holds: open until it exits
# a link or a FIFO planted there never blocks or redirects
_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class RuntimeFolderError(SeqpipeError):
    """The runtime folder is not this user's private folder of plain files (see `folder`)."""


def folder() -> Path | None:
    """Where the registry lives, checked (see `_private`): $SEQPIPE_RUNTIME_DIR, else $XDG_RUNTIME_DIR/seqpipe
    when $XDG_RUNTIME_DIR is this user's (the systemd per-user folder), else seqpipe-runs-UID in the system
    temp folder, created with mode 0700. None when it cannot be created (a read-only /tmp): the run goes
    on uncounted. A folder owned by another user, writable by group or others, a link, or one holding
    anything but plain files is a RuntimeFolderError: a shared /tmp lets anyone create that name first."""
    if os.environ.get("SEQPIPE_RUNTIME_DIR"):
        path = Path(os.environ["SEQPIPE_RUNTIME_DIR"])
    elif _usable(os.environ.get("XDG_RUNTIME_DIR", "")):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "seqpipe"
    else:
        path = Path(tempfile.gettempdir()) / f"seqpipe-runs-{os.getuid()}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    _private(path)
    return path


def _usable(given: str) -> bool:
    """Whether `given` is an existing folder of this user's, that it can write and others cannot."""
    try:
        info = os.stat(given)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022
            and os.access(given, os.W_OK | os.X_OK))


def _private(path: Path) -> None:
    """Refuse `path` unless it is a folder (not a link) of this user's, not writable by group or others,
    holding plain files only."""
    fix = "remove it, or set SEQPIPE_RUNTIME_DIR to a folder of your own"
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeFolderError(f"{path}: the runtime folder (live trainings, core slots) is not a folder "
                                 f"(a link?); {fix}")
    if info.st_uid != os.getuid():
        raise RuntimeFolderError(f"{path}: the runtime folder (live trainings, core slots) is owned by uid "
                                 f"{info.st_uid}, not by you (uid {os.getuid()}); {fix}")
    if info.st_mode & 0o022:
        raise RuntimeFolderError(f"{path}: the runtime folder (live trainings, core slots) is "
                                 f"writable by others than you (mode {stat.S_IMODE(info.st_mode):o}); chmod "
                                 f"700 it, or {fix}")
    with os.scandir(path) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                raise _not_plain(path / entry.name)


def _not_plain(path: Path) -> RuntimeFolderError:
    return RuntimeFolderError(f"{path}: not a plain file in the runtime folder (live trainings, core slots); "
                              "remove it, or set SEQPIPE_RUNTIME_DIR to a folder of your own")


def _open(path: Path) -> int:
    """`path` opened for writing (created 0600) without following a link or blocking on a FIFO, checked to
    be a plain file: a RuntimeFolderError otherwise."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | _OPEN, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise _not_plain(path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_plain(path)
    return fd


def register() -> None:
    """Count this process as a live training until it exits, when its entry is removed (idempotent; a
    folder that cannot be created or written leaves the process uncounted rather than failing the run;
    an unsafe one is refused, see `folder`)."""
    if _held:
        return
    runtime = folder()
    if runtime is None:
        return
    entry = runtime / f"{os.getpid()}.run"
    try:
        fd = _open(entry)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return
    _held.append(fd)
    atexit.register(_unregister, entry, os.getpid())


def _unregister(entry: Path, pid: int) -> None:
    """Remove this process's entry at exit (not in a forked child, whose pid differs), lock still held."""
    if os.getpid() == pid:
        with contextlib.suppress(OSError):
            entry.unlink()


def hold_cores(wanted: int, total: int, on_wait: Callable[[], None]) -> None:
    """Hold `wanted` of the machine's `total` core slots until this process exits, all or none: while
    other trainings hold too many, call `on_wait` once and retry every 0.05-0.25 s (random, so that
    waiting runs do not retry in step). A folder that cannot be used leaves the run free to start; an
    unsafe one, or a slot that is not a plain file, is refused (see `folder`)."""
    wanted = min(wanted, total)
    if _slots or wanted <= 0:
        return
    runtime = folder()
    if runtime is None:
        return
    retry, waited = random.Random(os.getpid()), False
    while True:
        got: list[int] = []
        for index in range(total):
            try:
                fd = _open(runtime / f"core-{index}.slot")
            except RuntimeFolderError:
                _close(got)
                raise
            except OSError:
                _close(got)
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            got.append(fd)
            if len(got) == wanted:
                _slots.extend(got)
                return
        _close(got)
        if not waited:
            on_wait()
            waited = True
        time.sleep(retry.uniform(0.05, 0.25))


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def others() -> int:
    """How many other seqpipe trainings are live now (not this process, nor the ones that started it)."""
    runtime = folder()
    if runtime is None:
        return 0
    try:
        entries = list(runtime.glob("*.run"))
    except OSError:
        return 0
    mine = _ancestry()
    count = 0
    for entry in entries:
        if entry.stem.isdigit() and int(entry.stem) in mine:
            continue
        if _is_live(entry):
            count += 1
    return count


def _is_live(entry: Path) -> bool:
    """Whether a process still holds `entry`'s lock; a stale entry is removed (unless it is a second
    old: its process may be between creating and locking it). Anything but a plain file is not live."""
    try:
        fd = os.open(entry, os.O_RDONLY | _OPEN)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        young = time.time() - info.st_mtime < 1.0
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    if not young:
        entry.unlink(missing_ok=True)
    return False


def _ancestry() -> set[int]:
    """This process and its parents (from /proc; just this process where /proc is missing)."""
    pids, pid = {os.getpid()}, os.getpid()
    while pid > 1:
        try:   # bytes: the command name in parentheses may be anything, in no particular encoding
            fields = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            break
        pid = int(fields.rsplit(b")", 1)[1].split()[1])
        pids.add(pid)
    return pids
