"""freq_filter downloads: noisy mixes of sinusoids as .npy files, synthetic, from a local folder or from
URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from seqpipe.io import save_npy, write_json
from seqpipe.params import Length, Range, check, check_size, params_section
from seqpipe.pipelines.freq_filter import RAW_FILES
from seqpipe.sources.http import HttpParams, download_http, require
from seqpipe.sources.local import LocalParams, copy_local

MAX_SERIES_VALUES = 2**29   # n_series x seq_len x (frequencies + 1): signals and components, stored once
Hz = Annotated[float, Range(0, 1e6, low_open=True)]
Scale = Annotated[float, Range(0, 1e6)]      # a size in the signal's units


@params_section
class FreqSyntheticParams:
    n_series: Annotated[int, Range(10, 10**7)]
    seq_len: Annotated[int, Range(8, 100_000)]
    sample_rate_hz: Hz
    frequencies_hz: Annotated[list[Hz], Length(2, 64)]
    amplitude_min: Annotated[float, Range(0, 1e6, low_open=True)]
    amplitude_max: Annotated[float, Range(0, 1e6, low_open=True)]
    noise_std: Scale
    # each series' frequency k is f_k x U(1 - drift, 1 + drift)
    frequency_drift: Annotated[float, Range(0, 0.5, high_open=True)]
    # envelope 1 + depth x sin(2 pi r t + psi), depth in [0, 1)
    amplitude_modulation: Annotated[float, Range(0, 1, high_open=True)]
    phase_modulation: Annotated[float, Range(0, 1000)]   # phase + index x sin(2 pi r t + psi') (radians)
    # r ~ U(0, rate) per series and component, for both modulations
    modulation_rate_hz: Annotated[float, Range(0, 1e6)]
    # lag-1 autocorrelation of the noise (its std stays noise_std)
    noise_ar1: Annotated[float, Range(0, 1, high_open=True)]
    # fraction of samples hit by a spike (signal only, not the target)
    outlier_rate: Annotated[float, Range(0, 0.5)]
    outlier_scale: Scale        # spike size: random sign x scale x U(0.5, 1.5)

    def __post_init__(self) -> None:
        nyquist = self.sample_rate_hz / 2
        check(all(0 < f < nyquist for f in self.frequencies_hz), "frequencies_hz",
              f"every frequency must lie in (0, {nyquist}) Hz (Nyquist of sample_rate_hz)")
        duration, quarter = self.seq_len / self.sample_rate_hz, 0.25 / min(self.frequencies_hz)
        check(duration >= quarter, "seq_len",
              f"a series lasts seq_len / sample_rate_hz = {duration:.3g} s, less than a quarter period "
              f"of the lowest frequency ({quarter:.3g} s): that component would be almost constant")
        check(self.amplitude_min <= self.amplitude_max, "amplitude_min", "need amplitude_min <= "
              "amplitude_max")
        k = len(self.frequencies_hz)
        check_size("n_series", self.n_series * self.seq_len * (k + 1), MAX_SERIES_VALUES,
                   "the stored series (n_series x seq_len x (frequencies + 1) values, signals and "
                   "components)")
        bands = self.bands()
        check(bands[0][0] > 0 and bands[-1][1] < nyquist, "frequency_drift",
              f"the bands reach {bands[0][0]:.3g} to {bands[-1][1]:.3g} Hz; they must stay inside (0, "
              f"{nyquist:g}) Hz (lower frequency_drift, phase_modulation or modulation_rate_hz)")
        freqs = sorted(self.frequencies_hz)
        for i in range(len(bands) - 1):
            check(bands[i][1] < bands[i + 1][0], "frequency_drift",
                  f"the {freqs[i]:g} Hz band reaches {bands[i][1]:.3g} Hz and the {freqs[i + 1]:g} Hz "
                  f"band falls to {bands[i + 1][0]:.3g} Hz: they overlap (lower frequency_drift, "
                  "phase_modulation or modulation_rate_hz)")

    def bands(self) -> list[tuple[float, float]]:
        """Instantaneous-frequency range of each component (sorted): drift plus the phase modulation's
        swing."""
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
    """AR(1) along the last axis with the same marginal std as `white`:
    e_t = phi e_(t-1) + sqrt(1 - phi^2) w_t."""
    if phi == 0:
        return white
    out = np.empty_like(white)
    out[..., 0] = white[..., 0]
    gain = np.sqrt(1 - phi ** 2)
    for i in range(1, white.shape[-1]):
        out[..., i] = phi * out[..., i - 1] + gain * white[..., i]
    return out


@params_section
class DownloadParams:
    source: Literal["synthetic", "local", "http"]
    synthetic: FreqSyntheticParams
    local: LocalParams  # a folder holding signals.npy, components.npy, signal_meta.json
    http: HttpParams    # the same three files from URLs


LOCAL_PATHS = ("local.path",)   # download keys naming the user's files: deps of the download stage
SOURCES = {"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local(p.local, None, out, required=RAW_FILES),
           "http": lambda p, seed, out: download_http(p.http, out, require(*RAW_FILES))}
