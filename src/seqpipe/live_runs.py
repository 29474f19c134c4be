"""A registry of the seqpipe trainings running on this machine right now, so that `num_threads: 0`
means "my fair share of the cores", not "every core" (several trainings at once: two clones'
`dvc repro`, `dvc queue start -j 2`, two test workers).

Each training holds an exclusive `flock` on its own file in a runtime folder for as long as its
process lives; the kernel drops the lock when the process ends, however it ends (kill -9 included),
so an entry whose lock can be taken is stale and is removed. A process does not count itself or the
processes it was started by (torchrun's ranks and the `seqpipe train` that launched them are one run).

A training with a set thread count also holds that many core slots (`hold_cores`: one flock per core)
while it runs, and waits for them when other trainings hold them: two trainings that would each
use every core run one after the other instead of spinning against each other.
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_held: list[int] = []   # the descriptors of this process's registration: open until it exits
_slots: list[int] = []  # the descriptors of the core slots this process holds: open until it exits


def folder() -> Path:
    """Where the registry lives: $SEQPIPE_RUNTIME_DIR, else $XDG_RUNTIME_DIR/seqpipe, else a per-user
    folder in the system temp folder."""
    if os.environ.get("SEQPIPE_RUNTIME_DIR"):
        return Path(os.environ["SEQPIPE_RUNTIME_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "seqpipe"
    return Path(tempfile.gettempdir()) / f"seqpipe-runs-{os.getuid()}"


def register() -> None:
    """Count this process as a live training until it exits (idempotent; a folder that cannot be
    written leaves the process uncounted rather than failing the run)."""
    if _held:
        return
    try:
        folder().mkdir(parents=True, exist_ok=True)
        fd = os.open(folder() / f"{os.getpid()}.run", os.O_CREAT | os.O_WRONLY, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return
    _held.append(fd)


def hold_cores(wanted: int, total: int, on_wait: Callable[[], None]) -> None:
    """Hold `wanted` of the machine's `total` core slots until this process exits, all or none: while
    other trainings hold too many, call `on_wait` once and retry every 0.05-0.25 s (random, so that
    waiting runs do not retry in step). A folder that cannot be used leaves the run free to start."""
    wanted = min(wanted, total)
    if _slots or wanted <= 0:
        return
    try:
        folder().mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    retry, waited = random.Random(os.getpid()), False
    while True:
        got: list[int] = []
        for index in range(total):
            try:
                fd = os.open(folder() / f"core-{index}.slot", os.O_CREAT | os.O_WRONLY, 0o644)
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
    try:
        entries = list(folder().glob("*.run"))
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
    old: its process may be between creating and locking it)."""
    try:
        fd = os.open(entry, os.O_RDONLY)
        young = time.time() - os.fstat(fd).st_mtime < 1.0
    except OSError:
        return False
    try:
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
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        pids.add(pid)
    return pids
