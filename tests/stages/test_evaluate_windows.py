"""The evaluate of a windowed model reads its splits a chunk of windows at a time (issue 28): read in
small chunks it scores what it scores from one chunk, and on a series far larger than a chunk it holds
a chunk of windows, never a split."""

from __future__ import annotations

import importlib
import json
import tracemalloc
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import tiny_overrides, write_params

from seqpipe import pipelines
from seqpipe.data.series import SPLITS
from seqpipe.params import Params, load_params
from seqpipe.stages import download, evaluate, preprocess, train

# each windowed model's chunk size (windows read at once) and a size that cuts its tiny splits in many chunks
CHUNKS = {"bandwidth": ("seqpipe.pipelines.bandwidth.backtest", 16),
          "freq_filter": ("seqpipe.pipelines.freq_filter.evaluate", 7),
          "ice_forecast": ("seqpipe.pipelines.ice_forecast.evaluate", 4)}


def _trained(name: str, params: Params) -> None:
    spec = pipelines.get(name)
    for stage in (download, preprocess, train):
        stage.run(spec, params)


def _close(a: object, b: object, where: str = "") -> None:
    """Every number of two evaluations equal to float32 rounding (a chunk's batch of windows may round
    the network's linear part differently), everything else equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-9, nan_ok=True), where
    else:
        assert a == b, where


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_evaluate_in_small_chunks_scores_what_one_chunk_scores(name: str, tiny_params: Params,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _trained(name, tiny_params)
    spec = pipelines.get(name)
    whole = json.loads(json.dumps(evaluate.run(spec, tiny_params)))
    module, small = CHUNKS[name]
    windows = len(np.load(Path("data/processed") / name / "starts_train.npy"))
    chunked = importlib.import_module(module)
    assert getattr(chunked, "ONE_PIECE", chunked.CHUNK) >= windows > 3 * small   # one piece, then many
    for constant in ("ONE_PIECE", "CHUNK"):
        monkeypatch.setattr(chunked, constant, small, raising=constant == "CHUNK")
    _close(json.loads(json.dumps(evaluate.run(spec, tiny_params))), whole)


def test_bandwidth_evaluate_holds_a_chunk_of_windows_never_a_split(workdir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_params(workdir / "params.yaml", {**tiny_overrides(), "models.bandwidth.preprocess.window": 32})
    params = load_params(workdir / "params.yaml")   # long windows: far more bytes than a row's targets
    _trained("bandwidth", params)
    spec = pipelines.get("bandwidth")
    evaluate.run(spec, params)   # once on the tiny data: the modules it imports are not counted below
    processed = workdir / "data" / "processed" / "bandwidth"
    features = np.load(processed / "features.npy")
    rows, window = 100_000, 32   # the tiny series repeated: windows far more than a chunk
    np.save(processed / "features.npy", np.resize(features, (rows, features.shape[1])))
    n = rows - window
    for split, (first, end) in zip(SPLITS, pairwise([0, int(0.7 * n), int(0.85 * n), n]), strict=True):
        np.save(processed / f"starts_{split}.npy", np.arange(first, end, dtype=np.int64))
    monkeypatch.setattr(importlib.import_module(CHUNKS["bandwidth"][0]), "CHUNK", 512)   # 100k windows
    tracemalloc.start()
    try:
        detail = evaluate.run(spec, params)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert detail["n_test_windows"] == n - int(0.85 * n)
    every_window = n * window * features.shape[1] * features.itemsize   # the splits' inputs read whole, once
    # what is held is per row (targets, the series, forecasts: ~15 MiB here) and one chunk of windows
    assert peak < every_window / 4, (peak / 2**20, every_window / 2**20)
