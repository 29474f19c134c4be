"""6. bandwidth inference: single-window latency (p50/p99) and batched throughput, ONNX Runtime vs torch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from seqpipe import checkpoint


def _latencies(fn, x: np.ndarray, repeats: int) -> np.ndarray:
    for _ in range(20):
        fn(x)
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn(x)
        out[i] = time.perf_counter() - start
    return out


def run(model_file: Path, onnx_file: Path, x_test: np.ndarray, repeats: int = 2000, batch: int = 1024) -> dict:
    import onnxruntime as ort

    network, _ = checkpoint.load_model(model_file, "bandwidth")
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])

    def run_onnx(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": x})[0]

    def run_torch(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(x)).numpy()

    one = np.ascontiguousarray(x_test[:1])
    many = np.ascontiguousarray(np.resize(x_test, (batch, *x_test.shape[1:])))
    result = {}
    for name, fn in (("onnxruntime", run_onnx), ("torch", run_torch)):  # interleaved below
        result[name] = {}
    for round_ in range(3):
        for name, fn in (("onnxruntime", run_onnx), ("torch", run_torch)):
            single = _latencies(fn, one, repeats // 3)
            batched = _latencies(fn, many, 20)
            result[name].setdefault("single", []).append(single)
            result[name].setdefault("batched", []).append(batched)
    summary = {}
    for name, parts in result.items():
        single = np.concatenate(parts["single"]) * 1e3
        batched = np.concatenate(parts["batched"])
        summary[name] = {"p50_ms": float(np.percentile(single, 50)), "p99_ms": float(np.percentile(single, 99)),
                         "batched_windows_per_s": float(batch / np.median(batched))}
    summary["batch"] = batch
    summary["p50_ratio_torch_over_onnx"] = summary["torch"]["p50_ms"] / summary["onnxruntime"]["p50_ms"]
    return summary
