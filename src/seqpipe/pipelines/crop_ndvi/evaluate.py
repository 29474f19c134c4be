"""crop_ndvi evaluation: MAE/MSE/RMSE/MASE/R2/accuracy of the BiLSTM and of the baselines persistence,
seasonal naive, drift, linear trend, ETS and ridge; curves and maps.

The series are one growing season per pixel (39 five-day steps by default), shorter than the 73 steps of
a year, so no yearly season is observable: `season_steps` 0 takes the season from the 5-day grid
(baselines.season_from_cadence: a week, i.e. 1 step, the plain naive forecast that Hyndman & Koehler use
to scale MASE for non-seasonal data); a season must fit in the window, the only history a training
sample keeps. Drift reads each test pixel's history from its earliest test window (meta_test), not only
the current window. ETS(A,Ad,N) has its three smoothing parameters fitted on every training window at
once (pooled least squares, baselines.fit_holt_damped: a pixel's training windows are stored without
their pixel, and one window is too short for a fit of its own), then runs over each test window.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import numpy as np

from seqpipe import baselines, plotting
from seqpipe.data.series import Standardizer
from seqpipe.errors import SeqpipeError
from seqpipe.io import load_npy
from seqpipe.metrics import baseline_goal, mase_scale, regression_metrics
from seqpipe.params import BatchSize, Penalty, Range, params_section
from seqpipe.pipelines.crop_ndvi import CropStats

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.stages.evaluate import EvalContext

log = logging.getLogger(__name__)


# metrics/crop_ndvi.json: RMSE (NDVI) and accuracy = 1 - MAE / NDVI range (each baseline the same);
# everything else goes to plots/crop_ndvi/eval/metrics_detail.json
HEADLINE = ("rmse", "accuracy")

@params_section
class EvaluateParams:
    batch_size: BatchSize
    # accuracy = 1 - MAE / NDVI range of the test targets (the original's)
    min_accuracy: Annotated[float, Range(0, 1)]
    fail_below_min_accuracy: bool    # true: the stage fails when accuracy < min_accuracy
    trend_steps: Annotated[int, Range(2, 366)]     # the linear-trend baseline fits the last this many steps
    ridge_alpha: Penalty
    sample_pixels: Annotated[int, Range(1, 12)]    # pixels drawn in the observed-vs-predicted curves
    # seasonal naive and MASE's season (<= window); 0: from the grid step
    season_steps: Annotated[int, Range(0, 366)]


def linear_trend(x: np.ndarray, steps: int) -> np.ndarray:
    """Least-squares line through each window's last `steps` values, extrapolated one step."""
    recent = x[:, -steps:].astype(np.float64)
    t = np.arange(steps) - (steps - 1) / 2
    slope = (recent * t).sum(1) / (t**2).sum()
    return recent.mean(1) + slope * (t[-1] + 1)


def scores(actual: np.ndarray, predicted: np.ndarray, ndvi_range: float, scale: float) -> dict[str, float]:
    out = regression_metrics(actual, predicted, mase_scale=scale)
    out["accuracy"] = 1.0 - out["mae"] / ndvi_range
    return out


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    # the windows cut from the stored pixel series, read whole for the baselines (float64 copies)
    test, train = ctx.windows("test"), ctx.windows("train")
    scaler = Standardizer.from_dict(ctx.stats["scaler"])
    test_x, test_y, train_x, train_y = (np.asarray(w) for w in (test["x"], test["y"], train["x"], train["y"]))
    x, actual = scaler.inverse(test_x[..., 0]), scaler.inverse(test_y[:, 0])
    ndvi_range = float(actual.max() - actual.min())
    if ndvi_range <= 0:
        raise SeqpipeError(f"{ctx.data_dir / 'ndvi.npy'}: constant test targets; the NDVI range is 0")
    x_train, y_train = scaler.inverse(train_x[..., 0]), scaler.inverse(train_y[:, 0])
    season = season_steps(p, ctx.stats)
    ets_params = baselines.fit_holt_damped(x_train, y_train)
    first, steps = pixel_history(test["meta"], x)
    candidates = {"model": scaler.inverse(ctx.predictions[:, 0]),
                  "persistence": baselines.persistence(x[:, -1]),
                  "seasonal_naive": baselines.seasonal_naive(x.T, x.shape[1], season),
                  "drift": baselines.drift(x[:, -1], first, steps),
                  "linear_trend": linear_trend(x, p.trend_steps),
                  "ets": baselines.holt_damped(x, *ets_params.values()),
                  "ridge": scaler.inverse(baselines.linear(train_x, train_y, test_x, p.ridge_alpha)[:, 0])}
    scale = mase_scale(y_train, baselines.seasonal_naive(x_train.T, x_train.shape[1], season),
                       f"{ctx.data_dir / 'ndvi.npy'} (the train windows)")
    result = {name: scores(actual, pred, ndvi_range, scale) for name, pred in candidates.items()}
    model = result.pop("model")
    passed = bool(model["accuracy"] >= p.min_accuracy)
    metrics = {"test": model, "baselines": result, "n_test_windows": len(actual), "ndvi_range": ndvi_range,
               "accuracy_definition": "1 - MAE / (max - min of the test target NDVI)",
               "min_accuracy": {"threshold": p.min_accuracy, "passed": passed},
               "goal": baseline_goal({"ndvi": model}, {b: {"ndvi": s} for b, s in result.items()}),
               "season_steps": season, "mase_scale": scale,
               "ets": {"model": "ETS(A,Ad,N), smoothing parameters fitted on all training windows (pooled "
                                "least squares); level and trend start from each window's first values",
                       "params": ets_params}}
    tag = plotting.signature(ctx.name, ctx.fingerprint)
    _curves(ctx, test["meta"], actual, candidates, p.sample_pixels, tag)
    plotting.scatter_panels(ctx.plots_dir / "predicted_vs_actual.png",
                            [("BiLSTM", actual, candidates["model"], "NDVI"),
                             ("persistence", actual, candidates["persistence"], "NDVI")],
                            title=f"{tag}: next-date NDVI, predicted vs observed (test)")
    _maps(ctx, scaler, p.batch_size, tag)
    if not passed and p.fail_below_min_accuracy:
        raise SeqpipeError(f"test accuracy {model['accuracy']:.4f} < models.{ctx.name}.evaluate.min_accuracy "
                           f"{p.min_accuracy} (R2 {model['r2']:.4f}, RMSE {model['rmse']:.4f})")
    return metrics


def season_steps(p: EvaluateParams, stats: CropStats) -> int:
    """The seasonal naive's season: `season_steps`, or (0) one from the date grid's step; at most the
    window."""
    season = p.season_steps or baselines.season_from_cadence(stats["grid_days"] * baselines.DAY_S)
    if season > stats["window"]:
        raise SeqpipeError(f"models.crop_ndvi.evaluate.season_steps: a season of {season} steps is "
                           f"longer than the {stats['window']}-step window (preprocess.window), the history "
                           "a sample keeps")
    return season


def pixel_history(meta: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per test window (meta rows: row, col, target step; `x` its inputs): the first value of its pixel's
    earliest test window and the steps from there to the window's last input (the drift's history)."""
    start = meta[:, 2] - x.shape[1]
    pixels, which = np.unique(meta[:, :2], axis=0, return_inverse=True)
    earliest = np.full(len(pixels), np.iinfo(np.int64).max)
    np.minimum.at(earliest, which.ravel(), start)
    first_row = np.flatnonzero(start == earliest[which.ravel()])
    first = np.empty(len(pixels))
    first[which.ravel()[first_row]] = x[first_row, 0]
    return first[which.ravel()], meta[:, 2] - 1 - earliest[which.ravel()]


def curve_columns(steps: np.ndarray, days: np.ndarray, lines: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """curves.csv's columns: step, day and `<name>_ndvi` per line, from the first observed step to the last;
    the steps between without a target stay NaN (empty cells: the plotted line breaks there)."""
    seen = np.flatnonzero(~np.isnan(lines["observed"]))
    kept = slice(seen[0], seen[-1] + 1)
    return {"step": steps[kept], "day": days[kept], **{f"{n}_ndvi": v[kept] for n, v in lines.items()}}


def _curves(ctx: EvalContext, meta: np.ndarray, actual: np.ndarray, candidates: dict[str, np.ndarray],
            n_pixels: int, tag: str) -> None:
    """curves.csv (the test pixel with most windows: `curve_columns`) and curves.png (the `n_pixels` with most
    windows)."""
    pixels, counts = np.unique(meta[:, :2], axis=0, return_counts=True)
    chosen = pixels[np.argsort(-counts, kind="stable")[:n_pixels]]
    steps = np.arange(ctx.stats["n_steps"])
    days = steps * ctx.stats["grid_days"]
    panels = []
    for k, (row, col) in enumerate(chosen):
        here = (meta[:, 0] == row) & (meta[:, 1] == col)
        lines = {}
        for name, values in (("observed", actual), ("BiLSTM", candidates["model"]),
                             ("persistence", candidates["persistence"])):
            line = np.full(len(steps), np.nan)
            line[meta[here, 2]] = values[here]
            lines[name] = line
        panels.append((f"pixel row {row}, col {col}", lines))
        if k == 0:
            plotting.write_csv(ctx.plots_dir / "curves.csv", curve_columns(steps, days, lines))
    plotting.line_panels(ctx.plots_dir / "curves.png", days, panels,
                         xlabel=f"days after {ctx.stats['grid_start']} ({ctx.stats['grid_days']}-day grid; "
                                "gaps: no valid target, e.g. cloud)",
                         ylabel="NDVI", title=f"{tag}: next-date NDVI on the test pixels with most windows")


def _maps(ctx: EvalContext, scaler: Standardizer, batch_size: int, tag: str) -> None:
    """ndvi_maps.png: NDVI of the last input date, the forecast of the next, what was observed, and the
    error (forecast - observed). Only the valid pixels are forecast (the others stay NaN): a sample's
    output does not depend on the others in its batch, and most of the map is cloud or no data."""
    load = {k: load_npy(ctx.data_dir / f"map_{k}.npy") for k in ("x", "valid", "last", "actual")}
    valid = load["valid"].ravel() > 0
    forecast = np.full(valid.shape, np.nan)
    if valid.any():
        forecast[valid] = scaler.inverse(ctx.predict(np.ascontiguousarray(load["x"][valid]),
                                                     batch_size)[:, 0])
    forecast = forecast.reshape(load["valid"].shape)
    stats: CropStats = ctx.stats
    ndvi = plotting.MapScale("NDVI (unitless)", -0.2, 1.0, "RdYlGn", location="bottom")
    error = plotting.MapScale("forecast - observed (NDVI)", -0.3, 0.3, "RdBu_r", location="bottom")
    plotting.map_panels(ctx.plots_dir / "ndvi_maps.png",
                        [(f"observed {stats['map_last_date']}", load["last"], ndvi),
                         (f"forecast {stats['map_target_date']}", forecast, ndvi),
                         (f"observed {stats['map_target_date']}", load["actual"], ndvi),
                         ("forecast - observed", forecast - load["actual"], error)],
                        ncols=4, title=f"{tag}: NDVI maps, one forecast date")


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    test, baselines = m["test"], m["baselines"]
    return (test["r2"] >= 0.9 and m["min_accuracy"]["passed"]
            and test["rmse"] < 0.75 * baselines["persistence"]["rmse"]
            and all(test["rmse"] < b["rmse"] for b in baselines.values()))
