"""Bad inputs of the download sources, table-driven (see test_bad_inputs.py): `local` paths that are or
hold links, special files or the pipeline's own outputs, and `http` file lists whose paths collide with
the manifest or each other or hold control characters, or whose URLs cannot be fetched. Each case runs
the real `seqpipe download` and expects one error line naming the file or the dotted key, no traceback,
no data/raw/<model>/ and no existing file changed; the http cases run against the real local server and
check that a case refused by the params check sent no request."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from seqpipe.io import sha256_file
from tests.reliability.bad_inputs import Case, check_refused, good
from tests.servers import FileServer

BW = "models.bandwidth.download"
DL_BW = ["download", "bandwidth"]
RAW_BW = "data/raw/bandwidth"


def _local(path: str) -> dict:
    return {f"{BW}.source": "local", f"{BW}.local.path": path}


def _user_folder(base: Path, work: Path) -> Path:
    """work/mine: the user's folder holding a good bandwidth.csv."""
    folder = work / "mine"
    folder.mkdir()
    shutil.copy(good(base, "download", "bandwidth") / "bandwidth.csv", folder)
    return folder


def _in_folder(add: Callable[[Path], Path]) -> Callable[[Path, Path], str]:
    """The user's folder with one more entry, made by `add` (which returns it): the error names it."""
    def setup(base: Path, work: Path) -> str:
        return str(add(_user_folder(base, work)))
    return setup


def _link(name: str, target: str) -> Callable[[Path], Path]:
    def add(folder: Path) -> Path:
        (folder / name).symlink_to(target)
        return folder / name
    return add


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe")
    return folder / "pipe"


def _socket(folder: Path) -> Path:
    with socket.socket(socket.AF_UNIX) as sock:   # the socket file stays after the socket closes
        sock.bind(str(folder / "sock"))
    return folder / "sock"


def _linked_csv(base: Path, work: Path) -> str:
    (work / "data.csv").symlink_to(_user_folder(base, work) / "bandwidth.csv")
    return "data.csv: a symbolic link"


def _linked_parent(base: Path, work: Path) -> str:
    (work / "linked").symlink_to(_user_folder(base, work))
    return "linked: a symbolic link"


def _fifo_path(base: Path, work: Path) -> str:
    os.mkfifo(work / "data.csv")
    return "data.csv: a FIFO (named pipe), not a regular file or folder (download.local.path"


def _csv_is_a_folder(base: Path, work: Path) -> str:
    (work / "mine/bandwidth.csv").mkdir(parents=True)
    return "mine: no bandwidth.csv in this folder"


def _processed_bandwidth(base: Path, work: Path) -> str:
    shutil.copytree(good(base, "preprocess", "bandwidth"), work / "data/processed/bandwidth")
    return "data/processed/bandwidth: is inside the pipeline's own output folder data/processed/"


def _a_file(base: Path, work: Path) -> str:
    shutil.copy(good(base, "download", "bandwidth") / "bandwidth.csv", work / "signals.csv")
    return "signals.csv: not a folder (download.local.path must name a folder"


def _linked_patch(base: Path, work: Path) -> str:
    raw = good(base, "download", "ice_type")
    shutil.copytree(raw / "patches", work / "patches")
    shutil.copy(raw / "labels.csv", work / "labels.csv")
    (work / "patches/extra.tif").symlink_to("/etc/passwd")
    return "patches/extra.tif: a symbolic link (to /etc/passwd)"


LINK = ": a symbolic link"
SPECIAL = "not a regular file or folder (download.local.path: only files and folders are copied)"
LOCAL_CASES = [
    Case("local-folder-links-outside", DL_BW, _in_folder(_link("secret.txt", "/etc/passwd")), RAW_BW,
         _local("mine")),   # 6
    Case("local-path-is-a-link", DL_BW, _linked_csv, RAW_BW, _local("data.csv")),   # 6
    Case("local-folder-link-loop", DL_BW, _in_folder(_link("loop", "..")), RAW_BW, _local("mine")),   # 7
    Case("local-folder-dangling-link", DL_BW, _in_folder(_link("gone.csv", "nowhere.csv")), RAW_BW, _local("mine")),
    Case("local-folder-holds-fifo", DL_BW, _in_folder(_fifo), RAW_BW, _local("mine")),   # 7
    Case("local-folder-holds-socket", DL_BW, _in_folder(_socket), RAW_BW, _local("mine")),   # 7
    Case("local-path-is-fifo", DL_BW, _fifo_path, RAW_BW, _local("data.csv")),   # 7
    Case("local-path-parent-is-a-link", DL_BW, _linked_parent, RAW_BW, _local("linked/bandwidth.csv")),
    Case("local-folder-csv-is-a-folder", DL_BW, _csv_is_a_folder, RAW_BW, _local("mine")),   # 8
    Case("local-path-in-pipeline-output", DL_BW, _processed_bandwidth, RAW_BW, _local("data/processed/bandwidth")),
    Case("local-path-is-repository", DL_BW, lambda b, w: ".: holds the pipeline's own output folder", RAW_BW,
         _local(".")),
    Case("local-folder-wanted-file-given", ["download", "freq_filter"], _a_file, "data/raw/freq_filter",
         {"models.freq_filter.download.source": "local", "models.freq_filter.download.local.path": "signals.csv"}),
    Case("local-ice_type-patch-is-a-link", ["download", "ice_type"], _linked_patch, "data/raw/ice_type",
         {"models.ice_type.download.source": "local", "models.ice_type.download.local.patches": "patches",
          "models.ice_type.download.local.labels": "labels.csv"}),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in LOCAL_CASES])
def test_bad_local_source_is_one_error_line(case: Case, base: Path, tmp_path: Path) -> None:
    check_refused(case, base, tmp_path)


# ---- http: (id, files as (url path or full URL, path), expected text; files[i] is named in it) -------------
FILES = "models.bandwidth.download.http.files"
HTTP_CASES = [
    ("http-path-is-the-manifest", [("bandwidth.csv", "./manifest.json")],   # 9
     f"{FILES}[0].path: './manifest.json': manifest.json is written by the download stage"),
    ("http-path-inside-the-manifest", [("bandwidth.csv", "bandwidth.csv"), ("bandwidth.csv", "manifest.json/x")],
     f"{FILES}[1].path: 'manifest.json/x': manifest.json is written by the download stage"),
    ("http-path-file-and-folder", [("bandwidth.csv", "bandwidth.csv"), ("bandwidth.csv", "bandwidth.csv/x")],   # 10
     f"{FILES}[1].path: 'bandwidth.csv/x' lies inside 'bandwidth.csv', which files[0].path downloads as a file"),
    ("http-path-duplicated", [("bandwidth.csv", "bandwidth.csv"), ("bandwidth.csv", ".//bandwidth.csv")],   # 10
     f"{FILES}[1].path: './/bandwidth.csv': files[0].path lands there too"),
    ("http-path-nul-byte", [("bandwidth.csv", "bandwidth.csv\x00")],   # 11
     f"{FILES}[0].path: 'bandwidth.csv\\x00': control (non-printable) characters are not allowed"),
    ("http-path-newline", [("bandwidth.csv", "band\nwidth.csv")],
     f"{FILES}[0].path: 'band\\nwidth.csv': control (non-printable) characters are not allowed"),
    ("http-path-absolute", [("bandwidth.csv", "/tmp/bandwidth.csv")],
     f"{FILES}[0].path: must be a relative path without '..', got '/tmp/bandwidth.csv'"),
    ("http-path-name-too-long", [("bandwidth.csv", "x" * 300)],
     f"{FILES}[0].path: '{'x' * 300}': a file or folder name longer than 255 bytes"),
    ("http-url-nul-byte", [("bandwidth.csv\x00", "bandwidth.csv")],
     f"{FILES}[0].url: 'SERVER/bandwidth.csv\\x00': control (non-printable) characters are not allowed"),
    ("http-url-empty-host-label", [("http://a..b/bandwidth.csv", "bandwidth.csv")],
     f"{FILES}[0].url: 'http://a..b/bandwidth.csv': no host, or an empty part in it"),
    ("http-url-port-out-of-range", [("http://127.0.0.1:99999/bandwidth.csv", "bandwidth.csv")],
     f"{FILES}[0].url: 'http://127.0.0.1:99999/bandwidth.csv': not a URL (Port out of range 0-65535)"),
]


@pytest.mark.parametrize("files, expected", [pytest.param(f, e, id=i) for i, f, e in HTTP_CASES])
def test_bad_http_paths_and_urls_are_refused_before_any_request(files: list[tuple[str, str]], expected: str,
                                                                base: Path, tmp_path: Path) -> None:
    served = good(base, "download", "bandwidth")
    sha = sha256_file(served / "bandwidth.csv")
    with FileServer(served) as server:
        urls = [u if "://" in u else f"{server.url}/{u}" for u, _ in files]
        params = {f"{BW}.source": "http", f"{BW}.http.retries": 0, f"{BW}.http.timeout_s": 5.0,
                  f"{BW}.http.files": [{"url": u, "sha256": sha, "path": p} for u, (_, p) in zip(urls, files)]}
        check_refused(Case("http", DL_BW, lambda b, w: expected.replace("SERVER", server.url), RAW_BW, params),
                      base, tmp_path)
    assert server.requests == []


def test_file_url_to_a_fifo_is_refused_without_reading(base: Path, tmp_path: Path) -> None:
    """A file:// URL naming a FIFO (or a device such as /dev/zero) would block or never end."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    params = {f"{BW}.source": "http", f"{BW}.http.retries": 0, f"{BW}.http.timeout_s": 5.0,
              f"{BW}.http.files": [{"url": fifo.as_uri(), "sha256": "0" * 64, "path": "bandwidth.csv"}]}
    check_refused(Case("file-url-fifo", DL_BW, lambda b, w: f"{fifo.as_uri()}: {fifo} is not a regular file",
                       RAW_BW, params), base, tmp_path)
