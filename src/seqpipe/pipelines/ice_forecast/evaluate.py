"""ice_forecast evaluation: RMSE/MAE (percent concentration) and ice-edge accuracy per lead day,
next to persistence (last observed map) and climatology (day-of-year mean of the train years)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from seqpipe import baselines, plotting
from seqpipe.metrics import binary_metrics, regression_metrics
from seqpipe.params import check

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.stages.evaluate import EvalContext


# metrics/ice_forecast.json: RMSE and MAE (% concentration), means over the lead days (each baseline the same);
# everything else goes to plots/ice_forecast/eval/metrics_detail.json
HEADLINE = ("rmse", "mae")

@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int
    edge_threshold: float      # ice edge: concentration >= this fraction (0.15 = 15%)
    plot_sample: int           # index of the test window drawn in forecast_vs_truth.png

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(0 < self.edge_threshold < 1, "edge_threshold", "must be in (0, 1)")
        check(self.plot_sample >= 0, "plot_sample", "must be >= 0")


def scores(truth: np.ndarray, forecast: np.ndarray, mask: np.ndarray, edge: float) -> dict[str, float]:
    """Per lead day and overall: RMSE and MAE in percent, edge accuracy; arrays are (N, lead, H, W)."""
    out: dict[str, float] = {}
    per_lead = []
    for k in range(truth.shape[1]):
        m = mask[:, k]
        reg = regression_metrics(100 * truth[:, k][m], 100 * forecast[:, k][m])
        acc = binary_metrics(truth[:, k][m] >= edge, forecast[:, k][m] >= edge)["accuracy"]
        per_lead.append((reg["rmse"], reg["mae"], acc))
        out[f"rmse_lead_{k + 1}"], out[f"mae_lead_{k + 1}"], out[f"edge_accuracy_lead_{k + 1}"] = per_lead[-1]
    rmse, mae, acc = np.mean(per_lead, axis=0)
    return {"rmse": float(rmse), "mae": float(mae), "edge_accuracy": float(acc), **out}


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    test, train = ctx.split("test"), ctx.split("train")
    truth, mask = test["y"], test["mask"]
    horizon = truth.shape[1]
    candidates = {
        "model": np.clip(ctx.predictions, 0.0, 1.0),
        "persistence": np.repeat(baselines.persistence(test["x"][:, -1:]), horizon, axis=1),
        "climatology": baselines.day_of_year_climatology(
            train["y"].reshape(-1, *truth.shape[2:]), train["doy"], train["mask"].reshape(-1, *truth.shape[2:]),
            test["doy"]),
    }
    results = {name: scores(truth, pred, mask, p.edge_threshold) for name, pred in candidates.items()}
    _plots(ctx, truth, mask, candidates, results, min(p.plot_sample, len(truth) - 1))
    model = results.pop("model")
    beats = {name: all(model[f"rmse_lead_{k}"] < r[f"rmse_lead_{k}"] for k in range(1, horizon + 1))
             for name, r in results.items()}
    return {"test": model, "baselines": results, "beats_baselines_every_lead": beats,
            "n_test_windows": len(truth), "units": {"rmse": "percent concentration", "mae": "percent concentration"}}


def _plots(ctx: EvalContext, truth: np.ndarray, mask: np.ndarray, candidates: dict[str, np.ndarray],
           results: dict[str, dict], sample: int) -> None:
    """rmse_by_lead.csv (+ png) and forecast_vs_truth.png for one test window: truth, model, persistence
    and the model's error (model - truth) at three lead days; land and masked pixels grey."""
    tag = plotting.signature(ctx.name, ctx.fingerprint)
    leads = np.arange(1, truth.shape[1] + 1)
    lines = {name: np.array([r[f"rmse_lead_{k}"] for k in leads]) for name, r in results.items()}
    plotting.write_csv(ctx.plots_dir / "rmse_by_lead.csv", {"lead_day": leads, **lines})
    plotting.line_panels(ctx.plots_dir / "rmse_by_lead.png", leads,
                         [("test split, ocean pixels", lines)], xlabel="lead (days)",
                         ylabel="RMSE (% concentration)", title=f"{tag}: RMSE by lead day")
    ocean = mask[sample].any(axis=0) | mask.any(axis=(0, 1))
    concentration = plotting.MapScale("sea-ice concentration (%)", 0.0, 100.0, "Blues_r", location="bottom")
    error = plotting.MapScale("model - truth (percentage points)", -50.0, 50.0, "RdBu_r")
    panels = []
    for k in sorted({0, len(leads) // 2, len(leads) - 1}):
        for name, maps in (("truth", truth), ("model", candidates["model"]),
                           ("persistence", candidates["persistence"])):
            panels.append((f"{name}, lead {k + 1} d", 100 * np.where(ocean, maps[sample, k], np.nan), concentration))
        panels.append((f"model - truth, lead {k + 1} d",
                       100 * np.where(ocean, candidates["model"][sample, k] - truth[sample, k], np.nan), error))
    plotting.map_panels(ctx.plots_dir / "forecast_vs_truth.png", panels, ncols=4,
                        title=f"{tag}: forecast vs truth, test window {sample}")


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    leads = [k for k in m["test"] if k.startswith("rmse_lead_")]
    return len(leads) == 7 and all(m["test"][k] < b[k] for b in m["baselines"].values() for k in leads)
