"""Source `http`: a list of URLs (http, https or file) with their sha256, for any model.

Each file lands at its `path` inside data/raw/<model>/, so a list can rebuild exactly the layout the
model's synthetic source writes; the model's own checks then run on it, as for `local`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Annotated

from seqpipe import layout
from seqpipe.errors import SeqpipeError
from seqpipe.params import Length, check, params_section
from seqpipe.sources.fetch import Transfer, check_url, fetch

SHA256 = re.compile(r"^[0-9a-f]{64}$")
NAME_MAX = 255   # bytes in one file or folder name (Linux, macOS)


@params_section
class HttpFile:
    url: str       # http://, https:// or file://
    sha256: str    # 64 lowercase hex digits; a mismatch deletes the file and fails
    path: str      # where it lands inside data/raw/<model>/ (relative, '/'-separated, no '..')

    def __post_init__(self) -> None:
        check_url(self.url, "url")
        check(bool(SHA256.match(self.sha256)), "sha256", "must be 64 lowercase hex digits, got "
              f"{self.sha256!r}")
        check_path(self.path, "path")


def check_path(text: str, key: str) -> None:
    """A ParamsError naming `key` unless `text` is a plain relative path that is not the manifest's."""
    path = PurePosixPath(text)
    check(text.isprintable(), key, f"{text!r}: control (non-printable) characters are not allowed in a path")
    check(bool(path.parts) and not path.is_absolute() and ".." not in path.parts and "\\" not in text,
          key, f"must be a relative path without '..', got {text!r}")
    check(all(len(part.encode()) <= NAME_MAX for part in path.parts), key,
          f"{text!r}: a file or folder name longer than {NAME_MAX} bytes")
    check(_same(path.parts[0]) != _same(layout.MANIFEST), key,
          f"{text!r}: {layout.MANIFEST} is written by the download stage; choose another path")


@params_section
class HttpParams(Transfer):
    files: Annotated[list[HttpFile], Length(0, 100_000)]

    def __post_init__(self) -> None:
        super().__post_init__()
        first: dict[str, int] = {}     # normalised path -> index of the first file landing there
        for i, f in enumerate(self.files):
            check(_same(f.path) not in first, f"files[{i}].path",
                  f"{f.path!r}: files[{first.get(_same(f.path))}].path lands there too")
            first[_same(f.path)] = i
        for i, f in enumerate(self.files):
            inside = [first[str(d)] for d in PurePosixPath(_same(f.path)).parents[:-1] if str(d) in first]
            check(not inside, f"files[{i}].path", f"{f.path!r} lies inside {self.files[inside[0]].path!r}, "
                  f"which files[{inside[0]}].path downloads as a file" if inside else "")


def _same(path: str) -> str:
    """`path` normalised ('./a//b' is 'a/b') and case-folded: two paths equal here land at one file
    (on case-insensitive file systems, as macOS and Windows have, too)."""
    return PurePosixPath(path).as_posix().casefold()


def download_http(p: HttpParams, out_dir: Path, validate: Callable[[Path], object] | None = None) -> dict:
    """Fetch every file into `out_dir`, then run the model's checks on the folder (as for `local`)."""
    if not p.files:
        raise SeqpipeError("download.http.files: empty; list the files to download (url, sha256, path)")
    for f in p.files:
        fetch(f.url, out_dir / f.path, p, f.sha256)
    if validate is not None:
        validate(out_dir)
    # run_source adds every file's sha256
    return {"synthetic": False, "urls": {f.path: f.url for f in p.files}}


def require(*names: str) -> Callable[[Path], None]:
    """A check that the files the model's preprocess reads are there."""
    def check_folder(folder: Path) -> None:
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise SeqpipeError(f"download.http.files: nothing lands at {', '.join(missing)} "
                               f"(this model reads {', '.join(names)})")
    return check_folder
