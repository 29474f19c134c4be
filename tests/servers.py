"""A real HTTP server on 127.0.0.1 for download tests: files with Range support, JSON routes, faults.

GDAL's `/vsicurl/` needs HTTP 206 answers to Range requests, which Python's `http.server` does not
give; this one does (a single `bytes=a-b`, `a-` or `-n` range). Folders are answered with an
Apache-style index page (`<a href="name">`), as NSIDC's server does. `routes` answer chosen paths
with a function (a small STAC API is built from them), and `faults` make the next requests to a
path fail in a chosen way:

    "404" / "500"   that status, once per entry
    "stall"         accept the request and send nothing until the server stops (or `stall_s`)
    "truncate"      send the full Content-Length header but only half of the body, then close
    "garbage"       answer 200 with a body that is not what the path holds

Every request is logged as (method, path, Range header) in `requests`.
"""

from __future__ import annotations

import html
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

Route = Callable[[str, dict[str, list[str]], bytes], "Response"]


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200) -> "Response":
        return cls(status, json.dumps(data).encode())


@dataclass
class FileServer:
    """Serve `root` on 127.0.0.1 (a free port) in a background thread; use as a context manager."""

    root: Path
    stall_s: float = 60.0
    routes: dict[str, Route] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __enter__(self) -> "FileServer":
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, path: str, *kinds: str) -> None:
        """Make the next len(kinds) requests to `path` fail as `kinds` say, in order."""
        self.faults["/" + path.lstrip("/")].extend(kinds)

    def paths_requested(self, method: str = "GET") -> list[str]:
        return [p for m, p, _ in self.requests if m == method]


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_POST(self) -> None:
            self._answer(head=False)

        def _answer(self, head: bool) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            server.requests.append((self.command, path, self.headers.get("Range")))
            pending = server.faults.get(path)
            fault = pending.pop(0) if pending else None
            if fault in ("404", "500"):
                return self._send(int(fault), b"injected fault\n", "text/plain", head)
            if fault == "stall":
                server._stop.wait(server.stall_s)
                return None
            body_len = int(self.headers.get("Content-Length") or 0)
            request_body = self.rfile.read(body_len) if body_len else b""
            if path in server.routes:
                reply = server.routes[path](self.command, parse_qs(parts.query), request_body)
                return self._send(reply.status, reply.body, reply.content_type, head)
            if fault == "garbage":
                return self._send(200, b"this is not the file you asked for\n", "text/plain", head)
            target = (server.root / path.lstrip("/")).resolve()
            if not target.is_relative_to(server.root.resolve()) or not target.exists():
                return self._send(404, b"not found\n", "text/plain", head)
            if target.is_dir():
                return self._send(200, _index_page(target), "text/html", head)
            data = target.read_bytes()
            if fault == "truncate":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            self._send_file(data, head)

        def _send_file(self, data: bytes, head: bool) -> None:
            wanted = _byte_range(self.headers.get("Range"), len(data))
            if wanted is None:
                return self._send(200, data, "application/octet-stream", head)
            start, end = wanted
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self._finish(data[start:end + 1], "application/octet-stream", head)

        def _send(self, status: int, body: bytes, content_type: str, head: bool) -> None:
            self.send_response(status)
            self._finish(body, content_type, head)

        def _finish(self, body: bytes, content_type: str, head: bool) -> None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, or None for no/unsupported Range header."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes="):].partition("-")
    if not first:  # suffix range: the last N bytes
        return max(size - int(last), 0), size - 1
    return int(first), min(int(last), size - 1) if last else size - 1


def _index_page(folder: Path) -> bytes:
    links = "".join(f'<a href="{html.escape(p.name)}{"/" if p.is_dir() else ""}">{html.escape(p.name)}</a>\n'
                    for p in sorted(folder.iterdir()))
    return f"<html><body><h1>Index of {html.escape(folder.name)}</h1>\n{links}</body></html>\n".encode()
