"""The download stage: run the configured source into data/raw/<model>/ and write manifest.json.

A source is a function (download_params, seed, out_dir) -> manifest fields. The folder is built
in a temp directory and swapped in whole, so a failed or killed download leaves nothing behind
(the http and nsidc sources download into that temp directory too, never into a cache).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from seqpipe import SeqpipeError
from seqpipe.io import atomic_dir, read_json, sha256_file, write_json

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def run_download(name: str, params: Any) -> dict:
    """The download stage for model `name`, with the source kind its params name."""
    from seqpipe import layout
    from seqpipe.registry import get

    cfg = params.model(name)
    return run_source(cfg.download.source, get(name).sources, cfg.download, params.seed, layout.raw_dir(name))


def run_source(kind: str, sources: dict[str, Any], download_params: Any, seed: int, out_dir: Path) -> dict:
    if kind not in sources:
        raise SeqpipeError(f"unknown source kind {kind!r} (this model supports: {', '.join(sources)})")
    started, clock = dt.datetime.now(dt.timezone.utc), time.monotonic()
    with atomic_dir(out_dir) as tmp:
        fields = sources[kind](download_params, seed, tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {"source": kind, **fields,
                    "files": {p.relative_to(tmp).as_posix(): sha256_file(p) for p in files}}
        write_json(tmp / MANIFEST, manifest)
    # The time of the download goes to the log only: the manifest stays byte-identical for the same content.
    log.info("download: %d files from source %r into %s, started %s, took %.1f s", len(files), kind, out_dir,
             started.isoformat(timespec="seconds"), time.monotonic() - clock)
    return manifest


def read_manifest(raw_dir: Path) -> dict:
    path = raw_dir / MANIFEST
    if not path.exists():
        raise SeqpipeError(f"{path}: missing; run the download stage first")
    return read_json(path)
