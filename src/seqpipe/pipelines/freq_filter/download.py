"""freq_filter downloads: noisy mixes of sinusoids as .npy files, synthetic, from a local folder or from URLs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from seqpipe.io import save_npy, write_json
from seqpipe.params import check
from seqpipe.pipelines.freq_filter import RAW_FILES
from seqpipe.sources.http import HttpParams, download_http, require
from seqpipe.sources.local import LocalParams, copy_local


@dataclass(frozen=True)
class FreqSyntheticParams:
    n_series: int
    seq_len: int
    sample_rate_hz: float
    frequencies_hz: list[float]
    amplitude_min: float
    amplitude_max: float
    noise_std: float

    def __post_init__(self) -> None:
        check(self.n_series >= 10, "n_series", "must be >= 10")
        check(self.seq_len >= 8, "seq_len", "must be >= 8")
        check(len(self.frequencies_hz) >= 2, "frequencies_hz", "needs at least two frequencies")
        nyquist = self.sample_rate_hz / 2
        check(all(0 < f < nyquist for f in self.frequencies_hz), "frequencies_hz",
              f"every frequency must lie in (0, {nyquist}) Hz (Nyquist of sample_rate_hz)")
        check(0 < self.amplitude_min <= self.amplitude_max, "amplitude_min", "need 0 < min <= max")
        check(self.noise_std >= 0, "noise_std", "must be >= 0")


def write_synthetic(p: FreqSyntheticParams, seed: int, out_dir: Path) -> dict:
    """signals.npy (n, T): mix + noise; components.npy (n, F, T): each clean sinusoid."""
    rng = np.random.default_rng(seed)
    freqs = np.asarray(p.frequencies_hz)
    t = np.arange(p.seq_len) / p.sample_rate_hz
    n, k = p.n_series, len(freqs)
    amplitude = rng.uniform(p.amplitude_min, p.amplitude_max, size=(n, k, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, k, 1))
    components = amplitude * np.sin(2 * np.pi * freqs[None, :, None] * t[None, None, :] + phase)
    signals = components.sum(axis=1) + rng.normal(0, p.noise_std, size=(n, p.seq_len))
    save_npy(out_dir / "signals.npy", signals.astype(np.float32))
    save_npy(out_dir / "components.npy", components.astype(np.float32))
    meta = {"sample_rate_hz": p.sample_rate_hz, "frequencies_hz": list(map(float, freqs))}
    write_json(out_dir / "signal_meta.json", meta)
    return {"synthetic": True, "generator": "sinusoid_mix", "seed": seed}


@dataclass(frozen=True)
class DownloadParams:
    source: Literal["synthetic", "local", "http"]
    synthetic: FreqSyntheticParams
    local: LocalParams  # a folder holding signals.npy, components.npy, signal_meta.json
    http: HttpParams    # the same three files from URLs


LOCAL_PATHS = ("local.path",)   # download keys naming the user's files: deps of the download stage
SOURCES = {"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local(p.local, None, out, required=RAW_FILES),
           "http": lambda p, seed, out: download_http(p.http, out, require(*RAW_FILES))}
