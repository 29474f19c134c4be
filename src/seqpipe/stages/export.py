"""`seqpipe export`: ONNX export of a trained model, checked against torch with onnxruntime."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from seqpipe import checkpoint, layout
from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_path, load_npy


def export_onnx(name: str, output: Path | None = None, check_samples: int = 256) -> dict:
    """Write model.onnx (dynamic batch axis) and report the max |onnxruntime - torch| on test data."""
    import onnx
    import onnxruntime as ort

    output = Path(output or layout.model_dir(name) / "model.onnx")
    if output.is_dir():
        raise SeqpipeError(f"{output}: is a folder; --output takes a file path")
    if output.exists() and output.suffix != ".onnx":  # e.g. model.pt, params.yaml: never overwritten by export
        raise SeqpipeError(f"{output}: exists and is not an .onnx file; export overwrites only .onnx files")
    network, _ = checkpoint.load_model(layout.model_file(name), expected_model=name)
    x_path = layout.processed_dir(name) / "x_test.npy"
    if not x_path.exists():
        raise SeqpipeError(f"{x_path}: missing; run the preprocess stage first")
    x = torch.from_numpy(load_npy(x_path, mmap_mode="r")[:check_samples].copy())
    with atomic_path(output) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(network, (x[:2],), str(tmp), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
        onnx.checker.check_model(str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        onnx_out = session.run(None, {"x": x.numpy()})[0]
        with torch.inference_mode():
            torch_out = network(x).numpy()
        max_abs_diff = float(np.max(np.abs(onnx_out - torch_out)))
        if not np.allclose(onnx_out, torch_out, atol=1e-4, rtol=1e-3):
            raise SeqpipeError(f"{output}: onnxruntime output differs from torch (max abs diff {max_abs_diff:.3g})")
    report = {"path": str(output), "bytes": output.stat().st_size, "checked_samples": len(x),
              "max_abs_diff": max_abs_diff, "onnxruntime": ort.__version__}
    return report
