"""`seqpipe export`: ONNX export of a trained model, checked against torch with onnxruntime.

The file describes itself in its metadata_props (string keys `seqpipe.*`, structured values as JSON):
what the model is, the order of its input features and output targets, the window, the scaler that
turns raw input into the network's input (and its output back), the input/output shapes with units
where known, and where it came from (params fingerprint, sha256 of the model file, seqpipe version,
git commit). With onnx and onnxruntime alone, a user can standardise raw input, run it and read the
output back, without this repository.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe import __version__, checkpoint, layout
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import atomic_path, output_file, output_target, sha256_file
from seqpipe.spec import IODescription, ModelSpec
from seqpipe.stages.splits import load_split_tensors


def export_onnx(spec: ModelSpec, output: str | Path | None = None, check_samples: int = 256) -> dict:
    """Write model.onnx (dynamic batch axis) with its metadata and report the max |onnxruntime - torch|
    on test data. The metadata's description of the input and output is the model's own (its predict
    module's `describe_io`)."""
    import onnx
    import onnxruntime as ort

    name = spec.name
    # 'out/': refused
    output = output_file(output) if output is not None else layout.model_dir(name) / "model.onnx"
    kind, target = output_target(output)   # a FIFO or a device is written into, never replaced
    # model.pt, params.yaml: never replaced
    if kind == "replace" and target.exists() and target.suffix != ".onnx":
        raise SeqpipeError(f"{output}: exists and is not an .onnx file; export overwrites only .onnx files")
    model_file = layout.model_file(name)
    network, payload = checkpoint.load_model(model_file, expected_model=name)
    data_dir = layout.processed_dir(name)
    if not (data_dir / "stats.json").exists():
        raise SeqpipeError(f"{data_dir / 'stats.json'}: missing; run the preprocess stage first")
    x = load_split_tensors(data_dir, "test")["x"][:check_samples]   # only these windows are read
    with atomic_path(output) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(network, (x[:2],), str(tmp), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
        graph = onnx.load(str(tmp))
        metadata = describe_model(spec, payload, sha256_file(model_file), shapes(graph))
        onnx.helper.set_model_props(graph, metadata)
        onnx.save(graph, str(tmp))
        onnx.checker.check_model(str(tmp))
        options = ort.SessionOptions()
        # a failing run is reported once, below, not also by onnxruntime's logger
        options.log_severity_level = 4
        session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
        try:
            onnx_out = session.run(None, {"x": x.numpy()})[0]
        except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
            raise SeqpipeError(f"{output}: onnxruntime cannot run the exported graph on {len(x)} "
                               f"test samples ({first_line(exc)[:200]}); the network's forward fixes a size "
                               "at export, e.g. len(x) where x.shape[0] would stay dynamic") from None
        with torch.inference_mode():
            torch_out = network(x).numpy()
        max_abs_diff = float(np.max(np.abs(onnx_out - torch_out)))
        if not np.allclose(onnx_out, torch_out, atol=1e-4, rtol=1e-3):
            raise SeqpipeError(f"{output}: onnxruntime output differs from torch (max abs diff "
                               f"{max_abs_diff:.3g})")
        size = tmp.stat().st_size   # the output may be a FIFO or a device
    report = {"path": str(output), "bytes": size, "checked_samples": len(x),
              "max_abs_diff": max_abs_diff, "onnxruntime": ort.__version__, "metadata": metadata}
    return report


def shapes(graph: Any) -> dict[str, str]:
    """'x' and 'y' -> 'float32 [batch, 20, 9]' from the ONNX graph's value infos."""
    import onnx

    out = {}
    for value in [*graph.graph.input, *graph.graph.output]:
        tensor = value.type.tensor_type
        dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
        out[value.name] = f"{onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)} [{', '.join(dims)}]"
    return out


def describe_model(spec: ModelSpec, payload: dict[str, Any], model_sha256: str,
                   io_shapes: dict[str, str]) -> dict[str, str]:
    """The metadata_props of the exported model, every value a string (JSON for lists and dicts)."""
    stats = payload.get("stats") or {}
    io = describe_io(spec, stats, io_shapes.get("x", "?"), io_shapes.get("y", "?"))
    entries: dict[str, Any] = {
        "model": spec.name, "summary": spec.summary, "task": spec.task,
        "network": {"class": payload.get("network"), "module": payload.get("network_module"),
                    "args": payload.get("network_args")},
        "features": io.features, "targets": io.targets, "window": io.window, "scaler": io.scaler,
        "input": io.x, "output": io.y, "units": io.units or None,
        "fingerprint": payload.get("fingerprint", "unknown"),
        "model_file": layout.model_file(spec.name).as_posix(), "model_file_sha256": model_sha256,
        "seqpipe_version": __version__, "git_commit": git_commit(),
        "stats": {k: v for k, v in stats.items() if k != "arrays"},
    }
    return {f"seqpipe.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in entries.items()
            if v is not None}


def describe_io(spec: ModelSpec, stats: dict[str, Any], x: str, y: str) -> IODescription:
    """The model's own description of its network's input and output (shapes `x`, `y`); names only the
    shapes for a model whose folder has no predict module."""
    if not spec.has_stage("predict"):
        return IODescription([], [], None, None, x, y)
    return spec.stage("predict").describe_io(stats, x, y)


PIPELINE_OUTPUTS = ("data", "models", "metrics", "plots", "dvc.lock")


def git_commit() -> str:
    """HEAD's commit, with '-dirty' when the working tree has changes beside what the pipeline writes (the
    DVC outputs under data/ and models/, metrics/, plots/, dvc.lock: a retrain changes those, not the
    code and params the model comes from); 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, encoding="utf-8",
                              errors="replace", timeout=30)
        if head.returncode != 0:
            return "unknown"
        spec = [":(top)", *(f":(top,exclude){path}" for path in PIPELINE_OUTPUTS)]
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *spec], capture_output=True,
                               encoding="utf-8", errors="replace", timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.returncode != 0 or dirty.stdout.strip() else "")
