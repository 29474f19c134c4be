"""freq_filter's synthetic generator: the realism knobs, their checks, and the old data with them at 0."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from seqpipe.params import ParamsError
from seqpipe.pipelines.freq_filter.download import FreqSyntheticParams, write_synthetic

PLAIN = FreqSyntheticParams(n_series=200, seq_len=50, sample_rate_hz=50.0, frequencies_hz=[1.0, 3.0, 5.0, 7.0],
                            amplitude_min=0.5, amplitude_max=1.5, noise_std=0.1, frequency_drift=0.0,
                            amplitude_modulation=0.0, phase_modulation=0.0, modulation_rate_hz=0.0,
                            noise_ar1=0.0, outlier_rate=0.0, outlier_scale=0.0)


def generate(tmp_path: Path, p: FreqSyntheticParams, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    write_synthetic(p, seed, tmp_path)
    return np.load(tmp_path / "signals.npy"), np.load(tmp_path / "components.npy")


def old_generator(p: FreqSyntheticParams, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The generator as it was before the realism knobs: fixed frequencies, white noise, no spikes."""
    rng = np.random.default_rng(seed)
    freqs = np.asarray(p.frequencies_hz)
    t = np.arange(p.seq_len) / p.sample_rate_hz
    n, k = p.n_series, len(freqs)
    amplitude = rng.uniform(p.amplitude_min, p.amplitude_max, size=(n, k, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, k, 1))
    components = amplitude * np.sin(2 * np.pi * freqs[None, :, None] * t[None, None, :] + phase)
    signals = components.sum(axis=1) + rng.normal(0, p.noise_std, size=(n, p.seq_len))
    return signals.astype(np.float32), components.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 42])
def test_the_knobs_at_zero_give_the_old_data_byte_for_byte(tmp_path: Path, seed: int) -> None:
    """Depths and rates at 0 (docs/models.md's one command); the rate and spike size do not matter then."""
    p = replace(PLAIN, n_series=57, seq_len=33, frequencies_hz=[2.0, 4.5, 9.0], noise_std=0.3,
                modulation_rate_hz=0.5, outlier_scale=3.0)
    signals, components = generate(tmp_path, p, seed)
    old_signals, old_components = old_generator(p, seed)
    assert signals.tobytes() == old_signals.tobytes()
    assert components.tobytes() == old_components.tobytes()


def fitted_frequency(series: np.ndarray, rate: float, grid: np.ndarray) -> np.ndarray:
    """Per row, the frequency in `grid` whose sine/cosine pair fits the row best (least squares)."""
    t = np.arange(series.shape[-1]) / rate
    errors = []
    for f in grid:
        basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, series.T, rcond=None)
        errors.append(((basis @ coef - series.T) ** 2).sum(axis=0))
    return grid[np.argmin(errors, axis=0)]


def test_no_drift_gives_exact_frequencies_and_drift_spreads_them(tmp_path: Path) -> None:
    p = replace(PLAIN, n_series=60, seq_len=500)
    grid = np.linspace(2.5, 3.5, 201)
    _, exact = generate(tmp_path, p)
    assert np.all(fitted_frequency(exact[:, 1], 50.0, grid) == pytest.approx(3.0))
    _, drifting = generate(tmp_path, replace(p, frequency_drift=0.1))
    ratio = fitted_frequency(drifting[:, 1], 50.0, grid) / 3.0
    assert ratio.min() >= 0.9 - 0.005 and ratio.max() <= 1.1 + 0.005
    assert ratio.min() < 0.95 and ratio.max() > 1.05 and ratio.std() > 0.04   # about uniform on +-10%


def test_amplitude_modulation_changes_the_envelope_within_its_depth(tmp_path: Path) -> None:
    p = replace(PLAIN, seq_len=500, amplitude_min=1.0, amplitude_max=1.0, modulation_rate_hz=0.5)
    _, steady = generate(tmp_path, p)
    _, modulated = generate(tmp_path, replace(p, amplitude_modulation=0.4))
    assert np.abs(steady).max() <= 1.0 + 1e-6
    peak_late = np.abs(modulated[:, 0, -100:]).max(axis=1)   # last 2 s: one 1 Hz peak at least twice
    peak_early = np.abs(modulated[:, 0, :100]).max(axis=1)
    assert np.abs(modulated).max() <= 1.4 + 1e-6 and np.abs(modulated).max() > 1.2
    assert np.abs(peak_late - peak_early).max() > 0.2


def test_phase_modulation_moves_zero_crossings_but_not_the_amplitude(tmp_path: Path) -> None:
    p = replace(PLAIN, amplitude_min=1.0, amplitude_max=1.0, modulation_rate_hz=0.5)
    _, plain = generate(tmp_path, p)
    _, wobbling = generate(tmp_path, replace(p, phase_modulation=0.5))
    assert np.abs(wobbling).max() <= 1.0 + 1e-6
    assert np.abs(wobbling - plain).max() > 0.3


def test_spikes_hit_the_signal_at_the_configured_rate_and_never_the_targets(tmp_path: Path) -> None:
    p = replace(PLAIN, n_series=400, noise_std=0.01, outlier_rate=0.03, outlier_scale=3.0)
    signals, components = generate(tmp_path, p)
    residual = signals - components.sum(axis=1)
    hit = np.abs(residual) > 1.0
    n = hit.size
    assert abs(hit.mean() - 0.03) < 4 * np.sqrt(0.03 * 0.97 / n)
    assert np.abs(residual[hit]).min() >= 1.5 - 0.1 and np.abs(residual[hit]).max() <= 4.5 + 0.1
    _, clean = generate(tmp_path, replace(p, outlier_rate=0.0))
    assert np.array_equal(components, clean)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_noise_has_the_configured_lag1_autocorrelation_and_std(tmp_path: Path, phi: float) -> None:
    p = replace(PLAIN, n_series=400, noise_ar1=phi)
    signals, components = generate(tmp_path, p)
    noise = (signals - components.sum(axis=1)).astype(np.float64)
    lag1 = (noise[:, 1:] * noise[:, :-1]).mean() / noise.var()
    assert lag1 == pytest.approx(phi, abs=0.02)
    assert noise.std() == pytest.approx(0.1, rel=0.05)


def test_new_randomness_does_not_move_the_old_draws(tmp_path: Path) -> None:
    """Turning a knob on changes what it owns only: amplitudes, phases and the white noise stay put."""
    base_signals, base = generate(tmp_path, PLAIN)
    signals, spiked = generate(tmp_path, replace(PLAIN, outlier_rate=0.1, outlier_scale=2.0))
    assert np.array_equal(base, spiked)
    untouched = np.abs(signals - spiked.sum(axis=1) - (base_signals - base.sum(axis=1))) < 1e-6
    assert 0.85 < untouched.mean() < 0.95


@pytest.mark.parametrize(("change", "key"), [
    ({"frequency_drift": -0.1}, "frequency_drift"),
    ({"frequency_drift": 0.5}, "frequency_drift"),
    ({"frequency_drift": 0.3}, "frequency_drift"),              # 5 Hz x 1.3 reaches 7 Hz x 0.7
    ({"amplitude_modulation": 1.0}, "amplitude_modulation"),
    ({"amplitude_modulation": -0.2}, "amplitude_modulation"),
    ({"phase_modulation": -1.0}, "phase_modulation"),
    ({"modulation_rate_hz": -0.5}, "modulation_rate_hz"),
    ({"phase_modulation": 2.0, "modulation_rate_hz": 1.0}, "frequency_drift"),   # swings of 2 Hz overlap
    ({"noise_ar1": 1.0}, "noise_ar1"),
    ({"noise_ar1": -0.1}, "noise_ar1"),
    ({"outlier_rate": 0.6}, "outlier_rate"),
    ({"outlier_rate": -0.01}, "outlier_rate"),
    ({"outlier_scale": -1.0}, "outlier_scale"),
])
def test_each_knob_is_checked_and_named(change: dict, key: str) -> None:
    with pytest.raises(ParamsError, match=rf"^{key}: "):
        replace(PLAIN, **change)


def test_bands_near_nyquist_are_refused() -> None:
    with pytest.raises(ParamsError, match=r"^frequency_drift: .*inside"):
        replace(PLAIN, frequencies_hz=[1.0, 24.0], frequency_drift=0.1)


@pytest.mark.parametrize("key", ["phase_modulation", "modulation_rate_hz", "outlier_scale"])
def test_infinite_knobs_are_refused(key: str) -> None:
    with pytest.raises(ParamsError, match=rf"^{key}: must be finite"):
        replace(PLAIN, **{key: math.inf})
