"""Downloads through pooch: timeouts, retries with backoff, sha256 checks, one-line errors.

pooch's `Pooch.fetch(retry_if_failed=n)` streams every file to a temp file beside its target,
checks the hash, and retries on connection errors, timeouts, 5xx answers, broken bodies and hash
mismatches (waiting 1 s, 2 s, ... up to 10 s between attempts). A 4xx answer is final and not
retried. Targets are inside the download stage's temp folder, so nothing lands in a cache or in
data/raw/ until the whole download succeeded. `file://` URLs are copied and checked the same way.
Credentials, where a server wants them, come from ~/.netrc (read by requests), never from params.
"""

from __future__ import annotations

import logging
import re
import shutil
import stat
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from seqpipe.errors import SeqpipeError, first_line
from seqpipe.params import Range, check, params_section

SCHEMES = ("http", "https", "file")
# pooch's ValueError
HASH_MISMATCH = re.compile(r"does not match the known hash: expected \S+ but got (\w+)")
log = logging.getLogger(__name__)


class HttpStatusError(SeqpipeError):
    """A final (4xx) HTTP answer; `status` lets a caller treat 404 as 'not there'."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@params_section
class Transfer:
    """Shared by the http and nsidc sources: how long to wait for a server and how often to retry."""

    # per connect and per read (a stalled server fails)
    timeout_s: Annotated[float, Range(0, 3600, low_open=True)]
    retries: Annotated[int, Range(0, 10)]   # further attempts after the first, with 1 s, 2 s, ... waits

    def __post_init__(self) -> None:
        """No relation between the fields to check; a subclass's __post_init__ calls this one."""


def check_url(url: str, key: str) -> None:
    """A ParamsError naming `key` unless `url` is a well-formed http, https or file URL."""
    import requests

    check(url.isprintable(), key, f"{url!r}: control (non-printable) characters are not allowed in a URL")
    try:
        parts = urlsplit(url)
        parts.port   # noqa: B018 (parsed on access: a port out of range raises)
    except ValueError as exc:
        check(False, key, f"{url!r}: not a URL ({first_line(exc)})")
    check(parts.scheme in SCHEMES, key, f"{url!r}: scheme must be one of {', '.join(SCHEMES)}")
    check(bool(parts.netloc) or parts.scheme == "file", key, f"{url!r}: no host")
    if parts.scheme != "file":
        host = parts.hostname or ""
        check(bool(host) and "" not in host.rstrip(".").split("."), key, f"{url!r}: no host, or an "
              "empty part in it")
        try:
            requests.models.PreparedRequest().prepare_url(url, None)   # what requests would refuse later
        except requests.RequestException as exc:
            check(False, key, f"{url!r}: not a valid URL ({first_line(exc)})")


def fetch(url: str, target: Path, transfer: Transfer, sha256: str | None = None) -> Path:
    """Download `url` to `target` (verified against `sha256` when given); one-line SeqpipeError on failure."""
    import pooch
    import requests

    # pooch logs through a handler of its own, bound to the sys.stderr of its import time (a closed
    # stream in a later in-process run); its lines go where ours go instead, in our format
    pooch.get_logger().handlers.clear()
    pooch.get_logger().parent = log
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise SeqpipeError(f"{url}: scheme must be one of {', '.join(SCHEMES)}")
    store = pooch.Pooch(path=target.parent, base_url="",
                        registry={target.name: f"sha256:{sha256}" if sha256 else None},
                        urls={target.name: url}, retry_if_failed=transfer.retries)
    downloader = _copy_file if scheme == "file" else _Downloader(timeout=transfer.timeout_s)
    attempts = f"{transfer.retries + 1} attempt{'s' if transfer.retries else ''}"
    try:
        store.fetch(target.name, downloader=downloader)
    except requests.Timeout:
        raise SeqpipeError(f"{url}: no answer within timeout_s={transfer.timeout_s:g} s "
                           f"({attempts})") from None
    except requests.HTTPError as exc:
        raise SeqpipeError(f"{url}: HTTP {exc.response.status_code} {exc.response.reason} "
                           f"({attempts})") from None
    except requests.exceptions.ChunkedEncodingError:
        raise SeqpipeError(f"{url}: the connection broke before the whole body arrived "
                           f"({attempts})") from None
    except requests.ConnectionError:
        raise SeqpipeError(f"{url}: cannot connect to {urlsplit(url).netloc} ({attempts})") from None
    except requests.RequestException as exc:   # before ValueError: InvalidURL and a few others are both
        raise SeqpipeError(f"{url}: download failed ({first_line(exc)}; {attempts})") from None
    except ValueError as exc:
        got = HASH_MISMATCH.search(str(exc))
        if got is None:   # not pooch's hash check: a bug, not a bad download (the CLI logs it)
            raise
        raise SeqpipeError(f"{url}: sha256 mismatch: expected {sha256}, got {got.group(1)} "
                           f"({attempts}; the file was deleted)") from None
    return target


def fetch_text(url: str, folder: Path, transfer: Transfer) -> str:
    """The body of `url` as text (an index page), fetched like any file; nothing is left in `folder`."""
    target = folder / ".index.html"
    try:
        return fetch(url, target, transfer).read_text(encoding="utf-8", errors="replace")
    finally:
        target.unlink(missing_ok=True)


class _Downloader:
    """pooch's HTTPDownloader; a 4xx answer raises HttpStatusError, which pooch does not retry."""

    def __init__(self, timeout: float) -> None:
        import pooch

        self._http = pooch.HTTPDownloader(timeout=timeout)

    def __call__(self, url: str, output_file: str, pooch: Any) -> None:
        import requests

        try:
            self._http(url, output_file, pooch)
        except requests.HTTPError as exc:
            status = exc.response.status_code
            if status < 500 and status not in (408, 429):
                raise HttpStatusError(f"{url}: HTTP {status} {exc.response.reason}", status) from None
            raise


def _copy_file(url: str, output_file: str, pooch: Any) -> None:
    """pooch downloader for file:// URLs."""
    source = Path(url2pathname(urlsplit(url).path))
    try:
        if not stat.S_ISREG(source.stat().st_mode):   # a FIFO would block, /dev/zero never end
            raise SeqpipeError(f"{url}: {source} is not a regular file")
        shutil.copyfile(source, output_file)
    except OSError as exc:
        raise SeqpipeError(f"{url}: cannot read {source} ({exc.strerror or first_line(exc)})") from None
