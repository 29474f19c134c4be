"""freq_filter: generator, split by series, baselines and predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqpipe import pipelines
from seqpipe.baselines import bandpass
from seqpipe.data.series import load_split
from seqpipe.params import Params
from seqpipe.pipelines.freq_filter.download import DownloadParams
from seqpipe.stages import download, preprocess
from tests.conftest import run

SPEC = pipelines.get("freq_filter")


def test_synthetic_mix_is_the_sum_of_components_plus_noise_and_rare_spikes(tiny_params: Params,
                                                                         workdir: Path) -> None:
    download.run(SPEC, tiny_params)
    raw = workdir / "data/raw/freq_filter"
    signals, components = np.load(raw / "signals.npy"), np.load(raw / "components.npy")
    residual = signals - components.sum(axis=1)
    p = tiny_params.section("freq_filter", "download", DownloadParams).synthetic
    assert p.outlier_rate > 0 and p.outlier_scale / 2 > 5 * p.noise_std   # spikes stand out of the noise
    spikes = np.abs(residual) > p.outlier_scale / 2 - 3 * p.noise_std
    assert 0 < spikes.mean() < 4 * p.outlier_rate
    assert abs(residual[~spikes].std() - p.noise_std) < 0.3 * p.noise_std


def test_split_keeps_each_series_in_one_split(tiny_params: Params, workdir: Path) -> None:
    download.run(SPEC, tiny_params)
    stats = preprocess.run(SPEC, tiny_params)
    processed = workdir / "data/processed/freq_filter"
    signals = {s: load_split(processed, s)["x"][:, :, 0] for s in ("train", "val", "test")}
    keys = {s: {row.tobytes() for row in v} for s, v in signals.items()}
    assert not (keys["train"] & keys["test"]) and not (keys["train"] & keys["val"])
    x = load_split(processed, "train")["x"][:]
    assert x.shape[2] == stats["input_size"] == 5
    assert np.array_equal(x[:, 0, 1:].sum(axis=1), np.ones(len(x)))  # exactly one selector bit


def test_bandpass_keeps_the_passband_and_removes_the_rest() -> None:
    t = np.arange(200) / 50.0
    low, high = np.sin(2 * np.pi * 1 * t), np.sin(2 * np.pi * 7 * t)
    out = bandpass((low + high)[None, :], center_hz=7.0, width_hz=1.0, order=2, sample_rate_hz=50.0)[0]
    middle = slice(50, 150)
    assert np.mean((out[middle] - high[middle]) ** 2) < 0.05


def test_predict_writes_one_column_per_frequency(workdir: Path) -> None:
    for stage in ("download", "preprocess", "train"):
        run(["seqpipe", stage, "freq_filter"], workdir)
    t = np.arange(60) / 50.0
    pd.DataFrame({"signal": np.sin(2 * np.pi * 3 * t)}).to_csv(workdir / "in.csv", index=False)
    run(["seqpipe", "predict", "freq_filter", "--input", "in.csv", "--output", "out.csv"], workdir)
    out = pd.read_csv(workdir / "out.csv")
    assert list(out.columns) == ["signal", "1hz", "3hz", "5hz", "7hz"] and len(out) == 60


def test_quality_aim_needs_both_baselines_beaten() -> None:
    aim = SPEC.stage("evaluate").quality_aim
    scores = {"test": {"mse": 0.01}, "baselines": {"bandpass": {"mse": 0.2}, "linear": {"mse": 0.02}}}
    assert aim(scores)
    assert not aim({**scores, "baselines": {"bandpass": {"mse": 0.2}, "linear": {"mse": 0.005}}})
    assert not aim({**scores, "baselines": {"bandpass": {"mse": 0.01}, "linear": {"mse": 0.02}}})
