"""freq_filter downloads: noisy mixes of sinusoids as .npy files, synthetic, from a local folder or from URLs."""

from __future__ import annotations

import math
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
    frequency_drift: float      # each series' frequency k is f_k x U(1 - drift, 1 + drift)
    amplitude_modulation: float  # envelope 1 + depth x sin(2 pi r t + psi), depth in [0, 1)
    phase_modulation: float     # phase + index x sin(2 pi r t + psi') (radians)
    modulation_rate_hz: float   # r ~ U(0, rate) per series and component, for both modulations
    noise_ar1: float            # lag-1 autocorrelation of the noise (its std stays noise_std)
    outlier_rate: float         # fraction of samples hit by a spike (signal only, not the target)
    outlier_scale: float        # spike size: random sign x scale x U(0.5, 1.5)

    def __post_init__(self) -> None:
        check(self.n_series >= 10, "n_series", "must be >= 10")
        check(self.seq_len >= 8, "seq_len", "must be >= 8")
        check(len(self.frequencies_hz) >= 2, "frequencies_hz", "needs at least two frequencies")
        nyquist = self.sample_rate_hz / 2
        check(all(0 < f < nyquist for f in self.frequencies_hz), "frequencies_hz",
              f"every frequency must lie in (0, {nyquist}) Hz (Nyquist of sample_rate_hz)")
        check(0 < self.amplitude_min <= self.amplitude_max, "amplitude_min", "need 0 < min <= max")
        check(self.noise_std >= 0, "noise_std", "must be >= 0")
        check(0 <= self.frequency_drift < 0.5, "frequency_drift", "must be in [0, 0.5)")
        check(0 <= self.amplitude_modulation < 1, "amplitude_modulation", "must be in [0, 1)")
        check(0 <= self.phase_modulation < math.inf, "phase_modulation", "must be finite and >= 0")
        check(0 <= self.modulation_rate_hz < math.inf, "modulation_rate_hz", "must be finite and >= 0")
        check(0 <= self.noise_ar1 < 1, "noise_ar1", "must be in [0, 1)")
        check(0 <= self.outlier_rate <= 0.5, "outlier_rate", "must be in [0, 0.5]")
        check(0 <= self.outlier_scale < math.inf, "outlier_scale", "must be finite and >= 0")
        bands = self.bands()
        check(bands[0][0] > 0 and bands[-1][1] < nyquist, "frequency_drift",
              f"the bands reach {bands[0][0]:.3g} to {bands[-1][1]:.3g} Hz; they must stay inside (0, {nyquist:g}) "
              "Hz (lower frequency_drift, phase_modulation or modulation_rate_hz)")
        freqs = sorted(self.frequencies_hz)
        for i in range(len(bands) - 1):
            check(bands[i][1] < bands[i + 1][0], "frequency_drift",
                  f"the {freqs[i]:g} Hz band reaches {bands[i][1]:.3g} Hz and the {freqs[i + 1]:g} Hz band falls to "
                  f"{bands[i + 1][0]:.3g} Hz: they overlap (lower frequency_drift, phase_modulation or "
                  "modulation_rate_hz)")

    def bands(self) -> list[tuple[float, float]]:
        """Instantaneous-frequency range of each component (sorted): drift plus the phase modulation's swing."""
        swing = self.phase_modulation * self.modulation_rate_hz
        return [(f * (1 - self.frequency_drift) - swing, f * (1 + self.frequency_drift) + swing)
                for f in sorted(self.frequencies_hz)]


def write_synthetic(p: FreqSyntheticParams, seed: int, out_dir: Path) -> dict:
    """signals.npy (n, T): mix + noise + spikes; components.npy (n, F, T): each clean (modulated) sinusoid.

    The draws of amplitude, phase and white noise come first from `seed`'s stream, as they always did;
    everything the realism knobs add comes from a second, independent stream, so with those knobs at 0
    the files are the plain fixed-frequency mix, byte for byte.
    """
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    freqs = np.asarray(p.frequencies_hz)
    t = np.arange(p.seq_len) / p.sample_rate_hz
    n, k = p.n_series, len(freqs)
    amplitude = rng.uniform(p.amplitude_min, p.amplitude_max, size=(n, k, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, k, 1))
    drift = extra.uniform(-1, 1, size=(n, k, 1)) * p.frequency_drift
    rate = extra.uniform(0, p.modulation_rate_hz, size=(2, n, k, 1))
    offset = extra.uniform(0, 2 * np.pi, size=(2, n, k, 1))
    angle = 2 * np.pi * (freqs[None, :, None] * (1 + drift)) * t[None, None, :] + phase
    angle = angle + p.phase_modulation * np.sin(2 * np.pi * rate[0] * t + offset[0])
    envelope = 1 + p.amplitude_modulation * np.sin(2 * np.pi * rate[1] * t + offset[1])
    components = amplitude * envelope * np.sin(angle)
    noise = _coloured(rng.normal(0, p.noise_std, size=(n, p.seq_len)), p.noise_ar1)
    hit = extra.uniform(size=(n, p.seq_len)) < p.outlier_rate
    spikes = hit * extra.choice([-1.0, 1.0], size=hit.shape) * extra.uniform(0.5, 1.5, size=hit.shape)
    signals = components.sum(axis=1) + noise + p.outlier_scale * spikes
    save_npy(out_dir / "signals.npy", signals.astype(np.float32))
    save_npy(out_dir / "components.npy", components.astype(np.float32))
    meta = {"sample_rate_hz": p.sample_rate_hz, "frequencies_hz": list(map(float, freqs))}
    write_json(out_dir / "signal_meta.json", meta)
    return {"synthetic": True, "generator": "sinusoid_mix", "seed": seed}


def _coloured(white: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) along the last axis with the same marginal std as `white`: e_t = phi e_(t-1) + sqrt(1 - phi^2) w_t."""
    if phi == 0:
        return white
    out = np.empty_like(white)
    out[..., 0] = white[..., 0]
    gain = np.sqrt(1 - phi ** 2)
    for i in range(1, white.shape[-1]):
        out[..., i] = phi * out[..., i - 1] + gain * white[..., i]
    return out


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
