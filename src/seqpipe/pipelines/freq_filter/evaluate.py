"""freq_filter evaluation: MSE overall and per frequency, vs band-pass and least-squares filters."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from seqpipe import baselines, plotting
from seqpipe.data.windows import map_chunks
from seqpipe.metrics import regression_metrics
from seqpipe.params import BatchSize, Penalty, Range, params_section

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.stages.evaluate import EvalContext


# metrics/freq_filter.json: MSE and MAE over all test series, the model's and each filter's (each baseline
# the same); everything else goes to plots/freq_filter/eval/metrics_detail.json
HEADLINE = ("mse", "mae")

@params_section
class EvaluateParams:
    batch_size: BatchSize
    bandpass_width_hz: Annotated[float, Range(0, 1e6, low_open=True)]
    bandpass_order: Annotated[int, Range(1, 10)]   # Butterworth order (higher ones are numerically fragile)
    linear_alpha: Penalty


def label(freq: float) -> str:
    return f"{freq:g}hz"


CHUNK = 1 << 14   # series read at once: the default data's 9600 training series are one chunk


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    freqs, fs = ctx.stats["frequencies_hz"], ctx.stats["sample_rate_hz"]
    test, train = ctx.windows("test"), ctx.windows("train")   # series cut on demand, CHUNK at a time
    # of each test series only the input mix and the clean target are held, (series, steps) as the predictions
    y = map_chunks(test["y"], lambda c: c[..., 0], CHUNK)
    selector = np.asarray(test["selector"])
    signals = map_chunks(test["x"], lambda c: c[:, :, 0], CHUNK)
    candidates = {"model": ctx.predictions[..., 0],
                  "bandpass": np.empty_like(y, dtype=np.float64),
                  "linear": np.empty_like(y, dtype=np.float64)}
    fits = _linear_fits(train, len(freqs), p.linear_alpha)
    for k, freq in enumerate(freqs):
        rows = selector == k
        candidates["bandpass"][rows] = baselines.bandpass(signals[rows], freq, p.bandpass_width_hz,
                                                          p.bandpass_order, fs)
        candidates["linear"][rows] = fits[k](signals[rows])
    scores = {}
    for name, pred in candidates.items():
        overall = regression_metrics(y, pred)
        section = {"mse": overall["mse"], "mae": overall["mae"]}
        for k, freq in enumerate(freqs):
            section[f"mse_{label(freq)}"] = regression_metrics(y[selector == k], pred[selector == k])["mse"]
        scores[name] = section
    _plots(ctx, freqs, fs, signals, y, selector, candidates)
    return {"test": scores.pop("model"), "baselines": scores, "n_test_samples": int(len(y))}


def _linear_fits(train: dict[str, Any], n_freqs: int, alpha: float) -> list[Callable[..., np.ndarray]]:
    """Per frequency, the least-squares linear filter (`baselines.linear`) fitted on the training series of
    that frequency, as a function of input mixes: in one piece from up to CHUNK training series, else
    from cross-products accumulated CHUNK series at a time (the same fit up to float64 rounding)."""
    selector = np.asarray(train["selector"])
    if len(selector) <= CHUNK:
        x, y = train["x"][:, :, 0], train["y"][:, :, 0]
        return [partial(baselines.linear, x[selector == k], y[selector == k], alpha=alpha)
                for k in range(n_freqs)]
    moments = [baselines.Moments() for _ in range(n_freqs)]
    for start in range(0, len(selector), CHUNK):
        x, y = train["x"][start:start + CHUNK, :, 0], train["y"][start:start + CHUNK, :, 0]
        for k, m in enumerate(moments):
            rows = selector[start:start + CHUNK] == k
            m.add(x[rows], y[rows])
    like = train["y"][:1, :, 0]
    return [partial(baselines.linear_apply, m.linear(alpha), like=like) for m in moments]


def _plots(ctx: EvalContext, freqs: list[float], fs: float, signals: np.ndarray, y: np.ndarray,
           selector: np.ndarray, candidates: dict[str, np.ndarray]) -> None:
    """traces.csv (first test series, every frequency: clean, model, band-pass, linear) and traces.png."""
    t = np.arange(y.shape[1]) / fs
    columns: dict[str, np.ndarray] = {"t": t}
    panels = []
    for k, freq in enumerate(freqs):
        row = int(np.flatnonzero(selector == k)[0])
        columns[f"clean_{label(freq)}"] = y[row]
        columns[f"predicted_{label(freq)}"] = candidates["model"][row]
        columns[f"bandpass_{label(freq)}"] = candidates["bandpass"][row]
        columns[f"linear_{label(freq)}"] = candidates["linear"][row]
        panels.append((f"{freq:g} Hz", {"input mix": signals[row], "clean": y[row],
                                        "BiLSTM": candidates["model"][row],
                                        "linear": candidates["linear"][row],
                                        "band-pass": candidates["bandpass"][row]}))
    plotting.write_csv(ctx.plots_dir / "traces.csv", columns)
    tag = plotting.signature(ctx.name, ctx.fingerprint)
    plotting.line_panels(ctx.plots_dir / "traces.png", t, panels, xlabel="time (s)",
                         ylabel="amplitude (a.u.)",
                         title=f"{tag}: first test series per frequency, clean vs BiLSTM, linear filter, "
                         "band-pass",
                         faint=("input mix",))


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json: a lower test MSE than
    every baseline (the band-pass and the least-squares linear filter)."""
    return all(m["test"]["mse"] < scores["mse"] for scores in m["baselines"].values())
