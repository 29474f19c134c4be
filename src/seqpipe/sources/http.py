"""Source `http`: a list of URLs (http, https or file) with their sha256, for any model.

Each file lands at its `path` inside data/raw/<model>/, so a list can rebuild exactly the layout the
model's synthetic source writes; the model's own checks then run on it, as for `local`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from seqpipe.errors import SeqpipeError
from seqpipe.params import check
from seqpipe.sources.fetch import Transfer, check_url, fetch

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class HttpFile:
    url: str       # http://, https:// or file://
    sha256: str    # 64 lowercase hex digits; a mismatch deletes the file and fails
    path: str      # where it lands inside data/raw/<model>/ (relative, '/'-separated, no '..')

    def __post_init__(self) -> None:
        check_url(self.url, "url")
        check(bool(SHA256.match(self.sha256)), "sha256", f"must be 64 lowercase hex digits, got {self.sha256!r}")
        path = PurePosixPath(self.path)
        check(bool(path.parts) and not path.is_absolute() and ".." not in path.parts and "\\" not in self.path,
              "path", f"must be a relative path without '..', got {self.path!r}")
        check(self.path != "manifest.json", "path", "manifest.json is written by the download stage")


@dataclass(frozen=True)
class HttpParams(Transfer):
    files: list[HttpFile]

    def __post_init__(self) -> None:
        super().__post_init__()
        paths = [f.path for f in self.files]
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        check(not dupes, "files", f"two files land at {dupes[0] if dupes else ''!r}")


def download_http(p: HttpParams, out_dir: Path, validate: Callable[[Path], object] | None = None) -> dict:
    """Fetch every file into `out_dir`, then run the model's checks on the folder (as for `local`)."""
    if not p.files:
        raise SeqpipeError("download.http.files: empty; list the files to download (url, sha256, path)")
    for f in p.files:
        fetch(f.url, out_dir / f.path, p, f.sha256)
    if validate is not None:
        validate(out_dir)
    return {"synthetic": False, "urls": {f.path: f.url for f in p.files}}   # run_source adds every file's sha256


def require(*names: str) -> Callable[[Path], None]:
    """A check that the files the model's preprocess reads are there."""
    def check_folder(folder: Path) -> None:
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise SeqpipeError(f"download.http.files: nothing lands at {', '.join(missing)} "
                               f"(this model reads {', '.join(names)})")
    return check_folder
