"""freq_filter preprocess: series split, then one sample per (series, selected frequency), cut on demand from
the signals and components stored once (seqpipe.data.windows): the selector is an index, not a copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqpipe.data.series import save_splits
from seqpipe.data.windows import cut, stored_arrays
from seqpipe.errors import SeqpipeError
from seqpipe.io import load_npy, read_json
from seqpipe.params import SplitFraction, params_section


@params_section
class PreprocessParams:
    val_fraction: SplitFraction
    test_fraction: SplitFraction


def load_raw(raw_dir: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read and check signals.npy, components.npy and signal_meta.json."""
    for name in ("signals.npy", "components.npy", "signal_meta.json"):
        if not (raw_dir / name).exists():
            raise SeqpipeError(f"{raw_dir / name}: missing")
    meta = read_json(raw_dir / "signal_meta.json")
    signals = load_npy(raw_dir / "signals.npy")
    components = load_npy(raw_dir / "components.npy")
    n_freq = len(meta["frequencies_hz"])
    if signals.ndim != 2 or components.shape != (signals.shape[0], n_freq, signals.shape[1]):
        raise SeqpipeError(f"{raw_dir / 'components.npy'}: shape {components.shape} does not match "
                           f"signals {signals.shape} and {n_freq} frequencies")
    for name, array in (("signals.npy", signals), ("components.npy", components)):
        if not np.isfinite(array).all():
            raise SeqpipeError(f"{raw_dir / name}: contains NaN or inf")
    return signals, components, meta


def make_inputs(signals: np.ndarray, selector: np.ndarray, n_freq: int) -> np.ndarray:
    """(n, T) signals + (n,) selected frequency index -> (n, T, 1 + n_freq) inputs."""
    onehot = np.eye(n_freq, dtype=np.float32)[selector]
    return np.concatenate([signals[:, :, None],
                           np.broadcast_to(onehot[:, None, :], (*signals.shape, n_freq))], axis=2)


def preprocess(p: PreprocessParams, seed: int, raw_dir: Path, out_dir: Path) -> dict:
    signals, components, meta = load_raw(raw_dir)
    n, n_freq = len(signals), len(meta["frequencies_hz"])
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * p.test_fraction)), int(round(n * p.val_fraction))
    series = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    starts, selectors = {}, {}
    for split, ids in series.items():   # one sample per (series, selected frequency), in series order
        starts[split] = np.repeat(np.sort(ids), n_freq)
        selectors[split] = np.tile(np.arange(n_freq), len(ids))
    # each series once; x (signal, one-hot selector) and y (the selected component) cut per batch
    stored = {"signal": signals.astype(np.float32, copy=False)[:, :, None],   # no copy of float32 files
              "components": components.astype(np.float32, copy=False)[:, :, :, None]}
    windows = {"x": cut("signal", dtype="float32", index="selector", onehot=n_freq),
               "y": cut("components", dtype="float32", index="selector", pick=True)}
    return {"frequencies_hz": meta["frequencies_hz"], "sample_rate_hz": meta["sample_rate_hz"],
            "seq_len": int(signals.shape[1]), "input_size": 1 + n_freq,
            "series_per_split": {k: len(v) for k, v in series.items()}, "windows": windows,
            "arrays": save_splits(out_dir, stored_arrays(stored, starts, {"selector": selectors}))}
