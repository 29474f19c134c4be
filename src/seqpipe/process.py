"""What the CLI's process meets around it: standard streams that are closed, full, a pipe whose reader
has gone or in the C locale, and the signals that end a run (SIGTERM, SIGHUP).

- A closed stdin, stdout or stderr (`2>&-`) is reopened on /dev/null: messages to it are dropped, and
  no file the run opens can take its descriptor.
- Text on stdout and stderr is written in the locale's encoding; a character it cannot hold is
  written as it came (a byte of a file name the locale could not decode) or backslash-escaped,
  never an error.
- A write error on stdout is a StreamError naming it (stderr's are dropped); a reader gone from the pipe
  (`seqpipe list | head -1`) ends the run quietly with 141 (128 + SIGPIPE), as git does.
- SIGTERM and SIGHUP raise Terminated in the main thread, so every atomic writer removes its temp
  file before the process exits 128 + signal (a signal the parent ignores, nohup's SIGHUP, stays
  ignored); `signals_held` defers them (and SIGINT) across the few steps where a temp file exists
  but its clean-up is not armed yet, and one that comes during an import is sent again after it.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from seqpipe.errors import EnvError, environment_error, first_line

ESCAPE = "seqpipe-escape"      # the codec error handler of stdout and stderr (registered below)
TERMINATING = (signal.SIGTERM, signal.SIGHUP)
BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE
REDELIVER_S = 0.005  # a signal that comes during an import is sent again after this long


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived. A BaseException, as KeyboardInterrupt is, so that no `except
    Exception` takes it for an error to handle; every `finally` and atomic writer runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


class StreamError(EnvError):
    """stdout cannot be written (a full disk, a file size limit, an I/O error): exit code 3."""


def _escape(exc: UnicodeError) -> tuple[bytes, int]:
    """Codec error handler: a lone surrogate that stands for an undecodable byte (surrogateescape) is
    written as that byte, any other character as a backslash escape."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for char in exc.object[exc.start:exc.end]:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        else:
            out += (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF
                    else f"\\U{code:08x}").encode("ascii")
    return bytes(out), exc.end


codecs.register_error(ESCAPE, _escape)


class _Named:
    """A text stream whose write and flush errors name it: OSError -> StreamError("stdout: ...");
    BrokenPipeError passes as it is (the caller ends quietly), and is remembered in `broken` for
    when a library swallows it (argparse's help does). Everything else is the stream's."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream, self._name = stream, name
        self.broken = False

    def write(self, text: str) -> int:
        with self._named():
            return self._stream.write(text)

    def flush(self) -> None:
        with self._named():
            self._stream.flush()

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            self.broken = True
            raise
        except OSError as exc:
            known = environment_error(exc, self._name)
            raise StreamError(str(known) if known else f"{self._name}: cannot write "
                              f"({first_line(exc)})") from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def standard_streams() -> Iterator[None]:
    """Inside: closed standard descriptors on /dev/null, stdout and stderr escaping what their
    encoding cannot hold, stdout naming itself in write errors (stderr's are logging's to drop).
    Restored on leaving."""
    saved = sys.stdout, sys.stderr
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        _reopen_if_closed(fd, mode)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if stream is None:   # Python found the descriptor closed at start-up
            stream = open(fd, "w", encoding="utf-8", errors=ESCAPE, closefd=False)  # noqa: SIM115
        elif hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors=ESCAPE)
        setattr(sys, name, stream)
    sys.stdout = _Named(sys.stdout, "stdout")
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _reopen_if_closed(fd: int, mode: int) -> None:
    try:
        os.fstat(fd)
    except OSError:
        null = os.open(os.devnull, mode)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)


def flush_stdout() -> None:
    """Flush stdout now, inside the error handling, rather than at interpreter exit; BrokenPipeError
    if its reader has gone at any point of the run."""
    sys.stdout.flush()
    if getattr(sys.stdout, "broken", False):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def silence_stdout() -> None:
    """After a broken pipe or a failed write: point descriptor 1 at /dev/null, so that the flush at
    interpreter exit neither fails again nor prints 'Exception ignored'."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)


def say(line: str) -> None:
    """One line on stderr; dropped when stderr itself cannot take it."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


class _Holds:
    """How deep signals_held blocks nest, and the signal that came meanwhile (the first)."""

    depth = 0
    pending: int | None = None


def _interrupt(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    # a second signal (dvc forwarding, a process-group kill) must not cut the clean-up
    for sig in TERMINATING:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def _on_signal(signum: int, frame: Any) -> None:
    if _Holds.depth:
        _Holds.pending = _Holds.pending or signum
    elif _importing(frame):   # an exception inside a library's import can leave it half loaded (numpy then
        # refuses a second load), or be swallowed by its bare `except:`: the signal comes again shortly
        again = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signum))
        again.daemon = True
        again.start()
    else:
        _interrupt(signum)


def _importing(frame: Any) -> bool:
    """Whether the main thread is inside an `import` (importlib's frozen frames on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class signals_held:  # noqa: N801 (used as a function: `with signals_held() as held`)
    """Inside: SIGINT, SIGTERM and SIGHUP wait (while terminate_on_signals handles them) until the block
    ends or `release()` is called, where the first of them is raised. An atomic writer holds them from
    creating its temp file until its clean-up is armed, and while it swaps a folder in."""

    def __init__(self) -> None:
        self._held = False

    def __enter__(self) -> signals_held:
        _Holds.depth += 1
        self._held = True
        return self

    def release(self) -> None:
        """End the hold now (once); raise the signal that came during it, if any."""
        if self._held:
            self._held = False
            _Holds.depth -= 1
            if not _Holds.depth and _Holds.pending is not None:
                signum, _Holds.pending = _Holds.pending, None
                _interrupt(signum)

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Inside (main thread only): SIGTERM and SIGHUP raise Terminated and SIGINT KeyboardInterrupt, both
    deferred by signals_held; a signal already ignored stays ignored."""
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, *TERMINATING):
            current = signal.getsignal(sig)
            if current is not signal.SIG_IGN and (sig != signal.SIGINT
                                                  or current is signal.default_int_handler):
                previous[sig] = signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
