"""bandwidth evaluation: a rolling-origin backtest of the forecaster and of the baselines persistence,
seasonal naive, drift, ETS and ridge, per-target MAE/RMSE/MAPE/MASE/R2/correlation, and the coverage of
the prediction intervals.

Backtest: the test period is cut into `backtest_folds` consecutive blocks, each forecast (one step ahead,
row by row) from its own origin, the first row before it. At each origin the fitted baselines are refit on
everything before it (an expanding window, as darts' `historical_forecasts` and statsforecast's
`cross_validation` do): ridge on every window before the origin, ETS(A,Ad,N) (statsmodels) on the last
`ets_fit_steps` rows before it. The forecaster's linear part is refit the same way (it is a ridge, cheap
to solve); its network correction is trained once, on the training split, and its gate and intervals
come from the validation split. Each method's score is the mean over the blocks, with their standard
deviation as the spread; against each baseline the per-block difference decides: a mean difference
within one standard deviation of the differences is a tie, not a win.

The baselines that need more history than a window (seasonal naive, drift, ETS) read the target series
rebuilt from the splits: the first training window's rows, then the train, val and test targets, which
are consecutive rows of the CSV. MASE's scale is the in-sample MAE of the seasonal naive forecast over
the training rows.

The windows are read a chunk at a time, never a whole split (backtest.py); what is held whole is per
window: the targets, the series rebuilt from them and each method's forecasts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, cast

import numpy as np

from seqpipe import baselines, conformal, plotting
from seqpipe.data.series import Standardizer
from seqpipe.data.windows import concat
from seqpipe.errors import SeqpipeError
from seqpipe.metrics import baseline_goal, mase_scale, mean_of, regression_metrics
from seqpipe.params import AUTO, BatchSize, Penalty, Range, check, params_section
from seqpipe.pipelines.bandwidth import BandwidthStats, backtest, unit

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.networks.forecaster import LinearResidualLSTM
    from seqpipe.stages.evaluate import EvalContext


# metrics/bandwidth.json: the backtest's mean over origins of RMSE and MAE (each averaged over the
# targets), the model's and each baseline's; everything else goes to plots/bandwidth/eval/metrics_detail.json
HEADLINE = ("backtest.rmse", "backtest.mae")


@params_section
class EvaluateParams:
    batch_size: BatchSize
    # MAPE skips |actual| below this fraction of the target's train mean
    mape_floor_fraction: Annotated[float, Range(0, 1, high_open=True)]
    ridge_alpha: Penalty
    # the original script's goal: mean correlation >= this
    target_correlation: Annotated[float, Range(-1, 1)]
    target_mape: Annotated[float, Range(0, 1000)]        # ... and mean MAPE (percent) below this
    # predictions.csv holds the last this many test steps (a readable window)
    plot_steps: Annotated[int, Range(10, 10**6)]
    # seasonal naive and MASE's season; auto: the one preprocess found in the data
    season_steps: Annotated[int, Range(1, 10**6)] | AUTO
    # ETS is fitted on the last this many rows before each origin (0: all of them)
    ets_fit_steps: Annotated[int, Range(0, 10**7)]
    backtest_folds: Annotated[int, Range(2, 50)]   # forecast origins in the test period (consecutive blocks)

    def __post_init__(self) -> None:
        check(self.ets_fit_steps == 0 or self.ets_fit_steps >= 10, "ets_fit_steps",
              "must be 0 (all) or >= 10")


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    stats: BandwidthStats = ctx.stats
    scaler = Standardizer.from_dict(stats["scaler"])
    targets, index = stats["target_columns"], stats["target_index"]
    splits = {s: ctx.windows(s) for s in ("train", "val", "test")}   # windows cut on demand, chunk by chunk
    y_all = backtest.in_chunks(lambda y: y, concat([splits[s]["y"] for s in splits]))   # (windows, targets)
    ys = dict(zip(splits, np.split(y_all, np.cumsum([len(splits[s]["y"]) for s in splits])), strict=False))
    x_test = splits["test"]["x"]

    def physical(scaled: np.ndarray) -> np.ndarray:
        return scaled * scaler.std[index] + scaler.mean[index]

    actual = physical(ys["test"])
    series = np.concatenate([splits["train"]["x"][0][:, index], y_all]).astype(np.float64)
    series *= scaler.std[index]   # physical(), in place: the series is a row per window
    series += scaler.mean[index]
    train_rows = len(series) - len(ys["test"]) - len(ys["val"])   # the training part of the series
    at = np.arange(len(series) - len(actual), len(series))      # test targets' rows in the series
    season = season_steps(p, stats, train_rows)
    if len(actual) < p.backtest_folds:
        raise SeqpipeError(f"models.bandwidth.evaluate.backtest_folds: {p.backtest_folds} origins need "
                           f"at least as many test windows; the test split has {len(actual)}")
    folds = np.array_split(np.arange(len(actual)), p.backtest_folds)
    x_all = concat([splits[s]["x"] for s in splits])   # every window in time order, nothing read
    origin = len(ys["train"]) + len(ys["val"])          # windows before the test split
    ends, x_folds = [origin + int(f[0]) for f in folds], [x_test.subset(f) for f in folds]
    network = _forecaster(ctx)
    correction = ctx.predictions.astype(np.float64) - backtest.in_chunks(
        lambda x: np.asarray(network.linear_forecast(x), np.float64), x_test)
    linear_part = np.concatenate(backtest.linear_parts(network, x_all, y_all, ends, x_folds))
    # the ridge at each origin, and on the training windows for the validation split (its intervals)
    ridge_val, *ridge = backtest.ridges(x_all, y_all, [len(ys["train"]), *ends],
                                        [splits["val"]["x"], *x_folds], p.ridge_alpha)
    candidates = {"model": physical(linear_part + correction), "linear_part": physical(linear_part),
                  "persistence": physical(baselines.persistence(backtest.in_chunks(lambda x: x[:, -1, index],
                                                                                   x_test))),
                  "seasonal_naive": baselines.seasonal_naive(series, at, season),
                  "drift": baselines.drift(series[at - 1], series[0], (at - 1)[:, None]),
                  "ets": _ets(series, at, folds, p.ets_fit_steps),
                  "ridge": physical(np.concatenate(ridge))}
    floors = np.abs(scaler.mean[index]) * p.mape_floor_fraction
    history = series[:train_rows]
    scales = [mase_scale(history[season:, k], history[:-season, k], f"{ctx.data_dir}: training rows of {t}")
              for k, t in enumerate(targets)]

    def score(pred: np.ndarray, rows: np.ndarray | slice = slice(None)) -> dict:
        per_target = {t: regression_metrics(actual[rows, k], pred[rows, k], mape_floor=floors[k],
                                            mase_scale=scales[k])
                      for k, t in enumerate(targets)}
        return {"mean": mean_of(per_target), **per_target}

    scores = {name: {**score(pred), "backtest": _backtest([score(pred, f)["mean"] for f in folds])}
              for name, pred in candidates.items()}
    model, linear = scores.pop("model"), scores.pop("linear_part")
    intervals = _intervals(ctx, physical, actual, candidates, ridge_val, ys["val"], scaler.std[index])
    mean = model["mean"]
    goal = {"correlation_min": p.target_correlation, "mape_max": p.target_mape,
            "met": bool(mean["correlation"] >= p.target_correlation and mean["mape"] < p.target_mape),
            "baselines_beaten": baseline_goal({t: model[t] for t in targets},
                                              {b: {t: s[t] for t in targets} for b, s in scores.items()})}
    _plots(ctx, targets, actual, candidates, intervals["model_bounds"], p.plot_steps,
           float(stats["cadence_s"]))
    return {"test": model, "baselines": scores, "goal": goal, "n_test_windows": len(actual),
            "backtest": {"folds": p.backtest_folds, "fold_windows": [len(f) for f in folds],
                         "verdicts": {b: _verdict(model["backtest"], s["backtest"])
                                      for b, s in scores.items()}},
            "network_contribution": {"linear_part": linear, "gate": _forecaster(ctx).gate.tolist(),
                                     "rmse_change_percent": 100 * (model["backtest"]["rmse"] /
                                                                   linear["backtest"]["rmse"] - 1)},
            "intervals": intervals["coverage"],
            "season_steps": season, "mase_scale": dict(zip(targets, scales, strict=True)),
            "ets": {"model": "ETS(A,Ad,N) (statsmodels ETSModel, maximum likelihood), refit at each origin",
                    "fit_steps": p.ets_fit_steps}}


def _forecaster(ctx: EvalContext) -> LinearResidualLSTM:
    """The network evaluated: this model's is always the LinearResidualLSTM it trained."""
    return cast("LinearResidualLSTM", ctx.network)


def _ets(series: np.ndarray, at: np.ndarray, folds: list[np.ndarray], fit_steps: int) -> np.ndarray:
    """ETS(A,Ad,N) one-step forecasts of the test rows, refit on the rows before each fold's origin."""
    out = np.empty((len(at), series.shape[1]))
    for f in folds:
        first = int(at[f[0]])
        fit = slice(max(first - fit_steps, 0) if fit_steps else 0, first)
        for k in range(series.shape[1]):
            forecast, _ = baselines.ets(series[:int(at[f[-1]]) + 1, k], fit)
            out[f, k] = forecast[at[f] - fit.start]
    return out


def _backtest(folds: list[dict[str, float]]) -> dict:
    """Mean over the origins (the headline) and their spread (standard deviation) of RMSE and MAE."""
    out: dict = {}
    for metric in ("rmse", "mae"):
        values = np.array([f[metric] for f in folds])
        out[metric] = float(values.mean())
        out[f"{metric}_spread"] = float(values.std(ddof=1))
        out[f"{metric}_folds"] = values.tolist()
    return out


def _verdict(model: dict, baseline: dict) -> dict:
    """win / tie / loss on backtest RMSE: the mean per-origin difference against its standard deviation."""
    difference = np.array(model["rmse_folds"]) - np.array(baseline["rmse_folds"])
    mean, spread = float(difference.mean()), float(difference.std(ddof=1))
    verdict = "tie" if abs(mean) <= spread else "win" if mean < 0 else "loss"
    return {"verdict": verdict, "rmse_difference": mean, "difference_spread": spread,
            "rmse_change_percent": 100 * mean / baseline["rmse"]}


def _intervals(ctx: EvalContext, physical: Callable[[np.ndarray], np.ndarray], actual: np.ndarray,
               candidates: dict[str, np.ndarray], ridge_val: np.ndarray, y_val: np.ndarray,
               scale: np.ndarray) -> dict:
    """Test coverage and width of the forecaster's split-conformal intervals (calibrated in training on the
    validation split) and of the ridge baseline's, calibrated the same way on its validation residuals
    (`ridge_val`: its forecast of the validation targets `y_val`, fitted on the training windows)."""
    levels = _forecaster(ctx).interval_levels
    model_half = _forecaster(ctx).halfwidth.double().numpy() * scale
    ridge_half = conformal.conformal_halfwidths(np.abs(physical(ridge_val) - physical(y_val)), levels)
    bounds = {"model": conformal.interval_bounds(candidates["model"], model_half),
              "ridge": conformal.interval_bounds(candidates["ridge"], ridge_half)}
    return {"model_bounds": bounds["model"],
            "coverage": {"calibration": "split conformal on the validation split, per target",
                         "calibration_windows": len(y_val),
                         **{name: conformal.coverage(actual, b, levels) for name, b in bounds.items()}}}


def season_steps(p: EvaluateParams, stats: BandwidthStats, train_rows: int) -> int:
    """The seasonal naive's season: `season_steps`, or (auto) the one preprocess found in the data; it must
    leave training rows to scale MASE with."""
    season = stats["season_steps"] if p.season_steps == "auto" else p.season_steps
    if season >= train_rows:
        where = "models.bandwidth.evaluate.season_steps" + (" auto (from the cadence)"
                                                            if p.season_steps == "auto" else "")
        raise SeqpipeError(f"{where}: a season of {season} steps needs more than the {train_rows} "
                           "training rows; use a shorter season or more data")
    return season


def window_columns(targets: list[str], actual: np.ndarray, candidates: dict[str, np.ndarray],
                   bounds: np.ndarray, levels: list[float], steps: int) -> dict[str, np.ndarray]:
    """The columns of predictions.csv: the last `steps` test steps (step = index in the test split), per
    target the actual, model and persistence values and the model's interval bounds, then each residual."""
    first = max(len(actual) - steps, 0)
    columns: dict[str, np.ndarray] = {"step": np.arange(first, len(actual))}
    for k, t in enumerate(targets):
        columns[f"actual_{t}"] = actual[first:, k]
        columns[f"predicted_{t}"] = candidates["model"][first:, k]
        columns[f"persistence_{t}"] = candidates["persistence"][first:, k]
        for i, level in enumerate(levels):
            columns[f"lower_{conformal.level_label(level)}_{t}"] = bounds[i, 0, first:, k]
            columns[f"upper_{conformal.level_label(level)}_{t}"] = bounds[i, 1, first:, k]
    for k, t in enumerate(targets):
        for name, label in (("model", "predicted"), ("persistence", "persistence")):
            columns[f"{label}_residual_{t}"] = candidates[name][first:, k] - actual[first:, k]
    return columns


def _plots(ctx: EvalContext, targets: list[str], actual: np.ndarray, candidates: dict[str, np.ndarray],
           bounds: np.ndarray, steps: int, cadence_s: float) -> None:
    """predictions.csv and forecast_intervals.png (the last `steps` test steps, with the interval bands) and
    predicted_vs_actual.png (every step)."""
    levels = _forecaster(ctx).interval_levels
    columns = window_columns(targets, actual, candidates, bounds, levels, steps)
    plotting.write_csv(ctx.plots_dir / "predictions.csv", columns)
    tag = plotting.signature(ctx.name, ctx.fingerprint)
    first = int(columns["step"][0])
    plotting.band_panels(
        ctx.plots_dir / "forecast_intervals.png", columns["step"],
        [(f"{t} ({unit(t) or 'units'})", actual[first:, k], candidates["model"][first:, k],
          [(f"{level:.0%}", bounds[i, 0, first:, k], bounds[i, 1, first:, k])
           for i, level in enumerate(levels)])
         for k, t in enumerate(targets)],
        xlabel=f"test step ({cadence_s:g} s apart)",
        title=f"{tag}: one-step forecasts with split-conformal intervals, the last "
        f"{len(columns['step'])} test steps")
    plotting.scatter_panels(
        ctx.plots_dir / "predicted_vs_actual.png",
        [(t, actual[:, k], candidates["model"][:, k], unit(t) or "units") for k, t in enumerate(targets)],
        title=f"{tag}: predicted vs actual, all {len(actual)} test steps ({cadence_s:g} s apart)")


def quality_aim(m: dict) -> bool:
    """The original script's goal (correlation and MAPE) and every baseline beaten on backtest RMSE and MAE:
    the quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    model = m["test"]["backtest"]
    beaten = all(model["rmse"] < b["backtest"]["rmse"] and model["mae"] < b["backtest"]["mae"]
                 for b in m["baselines"].values())
    return m["goal"]["met"] and beaten
