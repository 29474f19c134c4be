"""The preprocess stage: data/raw/<model>/ -> data/processed/<model>/ (arrays + stats.json)."""

from __future__ import annotations

import logging
from pathlib import Path

from seqpipe import layout
from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_dir, read_json, write_json
from seqpipe.params import Params
from seqpipe.spec import ModelSpec

log = logging.getLogger(__name__)
PROVENANCE_KEYS = ("source", "synthetic", "generator", "path", "urls", "items")


def run(spec: ModelSpec, params: Params) -> dict:
    """Build data/processed/<model>/ (arrays + stats.json) from data/raw/<model>/, atomically."""
    module, raw = spec.stage("preprocess"), layout.raw_dir(spec.name)
    preprocess = params.section(spec.name, "preprocess", module.PreprocessParams)
    manifest = read_manifest(raw)
    log.info("preprocess %s: %s -> %s", spec.name, raw, layout.processed_dir(spec.name))
    with atomic_dir(layout.processed_dir(spec.name)) as tmp:
        stats = module.preprocess(preprocess, params.seed, raw, tmp)
        stats["provenance"] = {k: manifest[k] for k in PROVENANCE_KEYS if k in manifest}
        write_json(tmp / "stats.json", stats)
    log.info("preprocess %s: %s", spec.name, {k: v["shape"] for k, v in stats["arrays"].items()})
    return stats


def read_manifest(raw_dir: Path) -> dict:
    path = raw_dir / layout.MANIFEST
    if not path.exists():
        raise SeqpipeError(f"{path}: missing; run the download stage first")
    return read_json(path)
