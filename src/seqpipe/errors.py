"""The errors a user sees and the CLI's exit codes: each error is printed as one line."""

from __future__ import annotations

import errno
from pathlib import Path

# Exit codes of `seqpipe` (the CLI's --help and the README list them).
EXIT_CODES = {1: "bad input: a file, a params key or an argument is wrong (the line names it); or a bug",
              2: "usage: unknown command or option (argparse)",
              3: "environment: disk full (an output or stdout), file too large, read-only file system, "
                 "permission denied",
              129: "terminated by SIGHUP (the terminal closed); train saved its checkpoint first",
              130: "interrupted by SIGINT (Ctrl-C); train saved its checkpoint first",
              141: "stdout is a pipe whose reader has gone (`seqpipe list | head -1`); nothing is reported",
              143: "terminated by SIGTERM; train saved its checkpoint first"}


class SeqpipeError(Exception):
    """An error a user can act on; the CLI prints it as one line and exits with `exit_code` (default 1)."""

    exit_code: int = 1


class EnvError(SeqpipeError):
    """The machine, not the input, is at fault: a full disk, a read-only file system, a permission."""

    exit_code = 3


# errno -> what is wrong and what to do, for the OSErrors that are the environment's fault.
_ENVIRONMENT = {errno.ENOSPC: "no space left on the device; free some space and rerun",
                errno.EDQUOT: "disk quota exceeded; free some space and rerun",
                errno.EFBIG: "file too large for this file system or the file size limit (ulimit -f)",
                errno.EROFS: "read-only file system; make it writable or run from a writable copy",
                errno.EACCES: "permission denied; check the owner and mode of the folder",
                errno.EPERM: "operation not permitted; check the owner, mode and attributes of the folder"}


def environment_error(exc: BaseException, path: str | Path | None = None) -> EnvError | None:
    """`exc` as an EnvError naming `path` (default: the file the OSError names), or None when it is
    not an environment fault (a missing file, a bad argument...)."""
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT:
        return None
    where = path if path is not None else exc.filename
    return EnvError(f"{where}: {_ENVIRONMENT[exc.errno]}" if where is not None else _ENVIRONMENT[exc.errno])


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
