"""The preprocess stage: data/raw/<model>/ -> data/processed/<model>/ (arrays + stats.json)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqpipe import layout
from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_dir, read_json, write_json
from seqpipe.params import Params
from seqpipe.spec import ModelSpec, Stats

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
        check_record(stats, spec.stats_record)
        write_json(tmp / "stats.json", stats)
    log.info("preprocess %s: %s", spec.name, {k: v["shape"] for k, v in stats["arrays"].items()})
    return stats


def check_record(stats: Mapping[str, Any], record: type[Stats]) -> None:
    """Refuse stats that do not hold exactly the keys of the model's record (its SPEC's `stats_record`): a
    key the code forgot to write or to declare is a defect found here, before any stage reads it."""
    # every TypedDict class has both at run time; typeshed's type[Stats] does not declare them
    required, optional = record.__required_keys__, record.__optional_keys__  # type: ignore[attr-defined]
    missing, undeclared = sorted(required - stats.keys()), sorted(stats.keys() - required - optional)
    if missing or undeclared:
        raise SeqpipeError(f"stats.json of {record.__module__}: does not match its record "
                           f"{record.__qualname__}"
                           + (f"; missing {missing}" if missing else "")
                           + (f"; not declared {undeclared}" if undeclared else ""))


def read_manifest(raw_dir: Path) -> dict:
    path = raw_dir / layout.MANIFEST
    if not path.exists():
        raise SeqpipeError(f"{path}: missing; run the download stage first")
    return read_json(path)
