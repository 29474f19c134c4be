"""bandwidth evaluation: per-target MAE/RMSE/MAPE/MASE/R2/correlation of the model and of the baselines
persistence, seasonal naive, drift, ETS and ridge.

The baselines that need more history than a window (seasonal naive, drift, ETS) read the target series
rebuilt from the splits: the first training window's rows, then the train, val and test targets, which
are consecutive rows of the CSV. ETS(A,Ad,N) is fitted (statsmodels) on the training rows only (the last
`ets_fit_steps` of them) and forecasts each later row from the rows before it with those parameters.
MASE's scale is the in-sample MAE of the seasonal naive forecast over the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from seqpipe import baselines, plotting
from seqpipe.data.series import Standardizer
from seqpipe.errors import SeqpipeError
from seqpipe.metrics import baseline_goal, mase_scale, mean_of, regression_metrics
from seqpipe.params import check

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.stages.evaluate import EvalContext


# metrics/bandwidth.json: RMSE and MAE averaged over the four targets (each baseline the same);
# everything else goes to plots/bandwidth/eval/metrics_detail.json
HEADLINE = ("mean.rmse", "mean.mae")

@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int
    mape_floor_fraction: float   # MAPE skips |actual| below this fraction of the target's train mean
    ridge_alpha: float
    target_correlation: float    # the original script's goal: mean correlation >= this
    target_mape: float           # ... and mean MAPE (percent) below this
    plot_steps: int              # predictions.csv holds the last this many test steps (a readable window)
    season_steps: int            # seasonal naive and MASE's season; 0: from the cadence (baselines.season_from_cadence)
    ets_fit_steps: int           # ETS is fitted on the last this many training rows (0: all of them)

    def __post_init__(self) -> None:
        check(self.season_steps >= 0, "season_steps", "must be >= 0 (0: from the data's cadence)")
        check(self.ets_fit_steps == 0 or self.ets_fit_steps >= 10, "ets_fit_steps", "must be 0 (all) or >= 10")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(0 <= self.mape_floor_fraction < 1, "mape_floor_fraction", "must be in [0, 1)")
        check(self.ridge_alpha >= 0, "ridge_alpha", "must be >= 0")
        check(self.plot_steps >= 10, "plot_steps", "must be >= 10")


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    stats = ctx.stats
    scaler = Standardizer.from_dict(stats["scaler"])
    targets, index = stats["target_columns"], stats["target_index"]
    splits = {s: ctx.split(s) for s in ("train", "val", "test")}
    test, train = splits["test"], splits["train"]

    def physical(scaled: np.ndarray) -> np.ndarray:
        return scaled * scaler.std[index] + scaler.mean[index]

    actual = physical(test["y"])
    series = physical(np.concatenate([train["x"][0][:, index], *(splits[s]["y"] for s in splits)]))
    train_rows = len(series) - len(test["y"]) - len(splits["val"]["y"])   # the training part of the series
    at = np.arange(len(series) - len(actual), len(series))                 # test targets' rows in the series
    season = season_steps(p, stats, train_rows)
    fit = slice(max(train_rows - p.ets_fit_steps, 0) if p.ets_fit_steps else 0, train_rows)
    ets_forecasts, ets_params = zip(*(baselines.ets(series[:, k], fit) for k in range(len(targets))))
    candidates = {"model": physical(ctx.predictions),
                  "persistence": physical(baselines.persistence(test["x"][:, -1, index])),
                  "seasonal_naive": baselines.seasonal_naive(series, at, season),
                  "drift": baselines.drift(series[at - 1], series[0], (at - 1)[:, None]),
                  "ets": np.stack([f[at - fit.start] for f in ets_forecasts], axis=1),
                  "ridge": physical(baselines.linear(train["x"], train["y"], test["x"], p.ridge_alpha))}
    floors = np.abs(scaler.mean[index]) * p.mape_floor_fraction
    history = series[:train_rows]
    scales = [mase_scale(history[season:, k], history[:-season, k], f"{ctx.data_dir}: training rows of {t}")
              for k, t in enumerate(targets)]
    scores = {}
    for name, pred in candidates.items():
        per_target = {t: regression_metrics(actual[:, k], pred[:, k], mape_floor=floors[k], mase_scale=scales[k])
                      for k, t in enumerate(targets)}
        scores[name] = {"mean": mean_of(per_target), **per_target}
    model = scores.pop("model")
    mean = model["mean"]
    goal = {"correlation_min": p.target_correlation, "mape_max": p.target_mape,
            "met": bool(mean["correlation"] >= p.target_correlation and mean["mape"] < p.target_mape),
            "baselines_beaten": baseline_goal({t: model[t] for t in targets},
                                              {b: {t: s[t] for t in targets} for b, s in scores.items()})}
    _plots(ctx, targets, actual, candidates, p.plot_steps, float(stats.get("cadence_s", 60.0)))
    return {"test": model, "baselines": scores, "goal": goal, "n_test_windows": len(actual),
            "season_steps": season, "mase_scale": dict(zip(targets, scales)),
            "ets": {"model": "ETS(A,Ad,N) (statsmodels ETSModel, maximum likelihood)",
                    "fit_rows": [fit.start, fit.stop], "params": dict(zip(targets, ets_params))}}


def season_steps(p: EvaluateParams, stats: dict, train_rows: int) -> int:
    """The seasonal naive's season: `season_steps`, or (0) one from the data's cadence; it must leave
    training rows to scale MASE with."""
    season = p.season_steps or baselines.season_from_cadence(float(stats["cadence_s"]))
    if season >= train_rows:
        where = "models.bandwidth.evaluate.season_steps" + (" 0 (from the cadence)" if not p.season_steps else "")
        raise SeqpipeError(f"{where}: a season of {season} steps needs more than the {train_rows} training rows; "
                           "use a shorter season or more data")
    return season


UNITS = {"throughput_mbps": "Mbit/s", "rtt_ms": "ms", "packet_loss": "%", "jitter_ms": "ms"}


def window_columns(targets: list[str], actual: np.ndarray, candidates: dict[str, np.ndarray],
                   steps: int) -> dict[str, np.ndarray]:
    """The columns of predictions.csv: the last `steps` test steps (step = index in the test split), per target
    the actual, model and persistence values, then each one's residual (predicted - actual)."""
    first = max(len(actual) - steps, 0)
    columns: dict[str, np.ndarray] = {"step": np.arange(first, len(actual))}
    for k, t in enumerate(targets):
        columns[f"actual_{t}"] = actual[first:, k]
        columns[f"predicted_{t}"] = candidates["model"][first:, k]
        columns[f"persistence_{t}"] = candidates["persistence"][first:, k]
    for k, t in enumerate(targets):
        for name, label in (("model", "predicted"), ("persistence", "persistence")):
            columns[f"{label}_residual_{t}"] = candidates[name][first:, k] - actual[first:, k]
    return columns


def _plots(ctx: EvalContext, targets: list[str], actual: np.ndarray, candidates: dict[str, np.ndarray],
           steps: int, cadence_s: float) -> None:
    """predictions.csv (a window of the last `steps` test steps) and predicted_vs_actual.png (every step)."""
    plotting.write_csv(ctx.plots_dir / "predictions.csv", window_columns(targets, actual, candidates, steps))
    tag = plotting.signature(ctx.name, ctx.fingerprint)
    plotting.scatter_panels(
        ctx.plots_dir / "predicted_vs_actual.png",
        [(t, actual[:, k], candidates["model"][:, k], UNITS.get(t, "units")) for k, t in enumerate(targets)],
        title=f"{tag}: predicted vs actual, all {len(actual)} test steps ({cadence_s:g} s apart)")


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    model, persistence = m["test"]["mean"], m["baselines"]["persistence"]["mean"]
    return m["goal"]["met"] and model["rmse"] < persistence["rmse"]
