"""`seqpipe export MODEL` for every model on the tiny trained copy: the ONNX file passes onnx's checker,
matches torch on test samples with a batch size other than the export's (the batch axis is dynamic:
ice_change's Siamese network once froze it), and names itself in its metadata."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest

from seqpipe import pipelines
from seqpipe.data.series import load_split
from tests.conftest import run


@pytest.mark.parametrize("model", pipelines.names())
def test_every_model_exports_a_self_describing_onnx_file(trained_repo: Path, tmp_path: Path, model: str) -> None:
    output = tmp_path / f"{model}.onnx"
    proc = run(["seqpipe", "export", model, "--output", str(output)], trained_repo)
    checked = int(re.search(r"over (\d+) test samples", proc.stdout).group(1))
    assert checked > 2, proc.stdout   # more rows than the export's batch of 2: the batch axis must be free
    meta = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert meta["seqpipe.model"] == model and len(meta["seqpipe.fingerprint"]) == 16, meta
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = load_split(trained_repo / "data" / "processed" / model, "test")["x"][:5]   # windowed or stored
    assert len(session.run(None, {"x": x})[0]) == 5
