"""`seqpipe check-params`: parse every section of params.yaml, strictly, before DVC runs any stage.

DVC deletes a stage's outputs before it runs the stage's command, so a bad value set with
`dvc exp run -S` would cost the model file before `seqpipe train` could refuse it. Every stage
depends on data/params.checked, which this stage writes only when all of params.yaml parses: a bad
value stops `dvc repro` here, with every output still in place. The file's content never changes,
so a good edit reruns only the stages whose own params changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from seqpipe.io import atomic_path
from seqpipe.params import Params
from seqpipe.spec import ModelSpec

log = logging.getLogger(__name__)

CHECKED = Path("data/params.checked")
CONTENT = ("params.yaml parses: seed, device, numerics and every model's download, preprocess, model, train "
           "and evaluate sections (written by `seqpipe check-params`; every stage depends on this file)\n")


def run(specs: list[ModelSpec], params: Params) -> None:
    """Parse every model's five sections (the first error is one ParamsError naming the key), then
    write data/params.checked."""
    for spec in specs:
        params.section(spec.name, "download", spec.stage("download").DownloadParams)
        params.section(spec.name, "preprocess", spec.stage("preprocess").PreprocessParams)
        params.section(spec.name, "model", spec.model_params)
        params.train(spec.name)
        params.section(spec.name, "evaluate", spec.stage("evaluate").EvaluateParams)
    with atomic_path(CHECKED) as tmp:
        tmp.write_text(CONTENT, encoding="utf-8")
    log.info("check-params: %s parses (%d models)", params.path, len(specs))
