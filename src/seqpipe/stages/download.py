"""The download stage: run the configured source into data/raw/<model>/ and write manifest.json.

A model's `download` module has `DownloadParams` (with a `source` field naming the kind) and
`SOURCES`, kind -> function (download params, seed, out_dir) -> manifest fields. The folder is
built in a temp directory and swapped in whole, so a failed or killed download leaves nothing
behind (the http and nsidc sources download into that temp directory too, never into a cache).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqpipe import layout
from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_dir, sha256_file, write_json
from seqpipe.params import Params
from seqpipe.spec import ModelSpec

log = logging.getLogger(__name__)
Source = Callable[[Any, int, Path], dict]


def run(spec: ModelSpec, params: Params) -> dict:
    """Fill data/raw/<model>/ from the source kind that `models.<model>.download.source` names."""
    module = spec.stage("download")
    download = params.section(spec.name, "download", module.DownloadParams)
    log.info("download %s: source %r -> %s", spec.name, download.source, layout.raw_dir(spec.name))
    return run_source(download.source, module.SOURCES, download, params.seed, layout.raw_dir(spec.name))


def run_source(kind: str, sources: dict[str, Source], download_params: Any, seed: int, out_dir: Path) -> dict:
    """Run `sources[kind]` into a temp folder, add manifest.json (files and sha256), swap it in."""
    if kind not in sources:
        raise SeqpipeError(f"unknown source kind {kind!r} (this model supports: {', '.join(sources)})")
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    with atomic_dir(out_dir) as tmp:
        fields = sources[kind](download_params, seed, tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {"source": kind, **fields,
                    "files": {p.relative_to(tmp).as_posix(): sha256_file(p) for p in files}}
        write_json(tmp / layout.MANIFEST, manifest)
    # The time of the download goes to the log only: the manifest stays byte-identical for the same content.
    log.info("download: %d files from source %r into %s, started %s, took %.1f s", len(files), kind, out_dir,
             started.isoformat(timespec="seconds"), time.monotonic() - clock)
    return manifest

