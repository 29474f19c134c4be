"""The preprocess stage: data/raw/<model>/ -> data/processed/<model>/ (arrays + stats.json)."""

from __future__ import annotations

import logging

from seqpipe import layout
from seqpipe.io import atomic_dir, write_json
from seqpipe.params import Params
from seqpipe.registry import get
from seqpipe.sources import read_manifest

log = logging.getLogger(__name__)
PROVENANCE_KEYS = ("source", "synthetic", "generator", "path", "urls", "items")


def run_preprocess(name: str, params: Params) -> dict:
    """Build data/processed/<name>/ (arrays + stats.json) from data/raw/<name>/, atomically."""
    cfg, raw = params.model(name), layout.raw_dir(name)
    manifest = read_manifest(raw)
    with atomic_dir(layout.processed_dir(name)) as tmp:
        stats = get(name).preprocess(cfg.preprocess, params.seed, raw, tmp)
        stats["provenance"] = {k: manifest[k] for k in PROVENANCE_KEYS if k in manifest}
        write_json(tmp / "stats.json", stats)
    log.info("preprocess %s: %s", name, {k: v["shape"] for k, v in stats["arrays"].items()})
    return stats
