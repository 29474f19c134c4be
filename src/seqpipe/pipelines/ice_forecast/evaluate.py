"""ice_forecast evaluation: RMSE/MAE, IIEE, extent accuracy/IoU and SSIM per lead day (scores.py), next to
persistence (last observed map) and climatology (day-of-year mean of the train years)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np

from seqpipe import baselines, plotting
from seqpipe.data.windows import map_chunks
from seqpipe.params import BatchSize, Range, check, params_section
from seqpipe.pipelines.ice_forecast.scores import cell_area_km2, scores

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.stages.evaluate import EvalContext


# metrics/ice_forecast.json: RMSE and MAE (% concentration) and IIEE (km^2), means over the lead days (each
# baseline the same); everything else goes to plots/ice_forecast/eval/metrics_detail.json
HEADLINE = ("rmse", "mae", "iiee")
EDGE_PLOTS = (("iiee", "IIEE (km²)"), ("iou", "IoU of the ice extent"), ("ssim", "SSIM"))

@params_section
class EvaluateParams:
    batch_size: BatchSize
    # ice edge: concentration >= this fraction (0.15 = 15%)
    edge_threshold: Annotated[float, Range(0, 1, low_open=True, high_open=True)]
    ssim_window: Annotated[int, Range(3, 101)]   # SSIM window side in cells (odd)
    plot_sample: Annotated[int, Range(0, 10**6)]  # index of the test window drawn in forecast_vs_truth.png

    def __post_init__(self) -> None:
        check(self.ssim_window % 2 == 1, "ssim_window", f"must be odd, got {self.ssim_window}")


CHUNK = 256   # windows read at once (a window is history_days + horizon_days maps)


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    test, train = ctx.windows("test"), ctx.windows("train")   # windows cut on demand, CHUNK at a time
    # the test targets and their masks are held, (windows, lead, H, W) as the predictions; inputs never whole
    truth, mask = np.asarray(test["y"]), np.asarray(test["mask"])
    horizon = truth.shape[1]
    climatology = baselines.Climatology(truth.shape[2:])
    for start in range(0, len(train["y"]), CHUNK):
        rows = slice(start, start + CHUNK)
        climatology.add(train["y"][rows].reshape(-1, *truth.shape[2:]), train["doy"][rows],
                        train["mask"][rows].reshape(-1, *truth.shape[2:]))
    candidates = {
        "model": np.clip(ctx.predictions, 0.0, 1.0),
        "persistence": np.repeat(baselines.persistence(map_chunks(test["x"], lambda x: x[:, -1:], CHUNK)),
                                 horizon, axis=1),
        "climatology": climatology.at(np.asarray(test["doy"])),
    }
    cell_km2 = cell_area_km2(ctx.stats)
    results = {name: scores(truth, pred, mask, p.edge_threshold, cell_km2, p.ssim_window)
               for name, pred in candidates.items()}
    _plots(ctx, truth, mask, candidates, results, min(p.plot_sample, len(truth) - 1))
    model = results.pop("model")
    beats = {metric: {name: all(model[f"{metric}_lead_{k}"] < r[f"{metric}_lead_{k}"]
                                for k in range(1, horizon + 1))
                      for name, r in results.items()} for metric in ("rmse", "iiee")}
    return {"test": model, "baselines": results, "beats_baselines_every_lead": beats,
            "n_test_windows": len(truth), "cell_area_km2": cell_km2,
            "units": {"rmse": "percent concentration", "mae": "percent concentration", "iiee": "km^2 per map",
                      "edge_accuracy": f"share of valid cells, ice = concentration >= {p.edge_threshold:g}",
                      "iou": f"ice extent (concentration >= {p.edge_threshold:g}), valid cells",
                      "ssim": "mean SSIM over valid cells (forecast set to truth elsewhere)"}}


def _plots(ctx: EvalContext, truth: np.ndarray, mask: np.ndarray, candidates: dict[str, np.ndarray],
           results: dict[str, dict], sample: int) -> None:
    """rmse_by_lead.csv (+ png), edge_by_lead.csv (+ png: IIEE, IoU, SSIM; columns <candidate>_<score>) and
    forecast_vs_truth.png for one test window: truth, model, persistence and the model's error (model - truth)
    at three lead days; land and masked pixels grey."""
    tag = plotting.signature(ctx.name, ctx.fingerprint)
    leads = np.arange(1, truth.shape[1] + 1)

    def by_lead(metric: str) -> dict[str, np.ndarray]:
        return {name: np.array([r[f"{metric}_lead_{k}"] for k in leads]) for name, r in results.items()}

    lines = by_lead("rmse")
    plotting.write_csv(ctx.plots_dir / "rmse_by_lead.csv", {"lead_day": leads, **lines})
    plotting.line_panels(ctx.plots_dir / "rmse_by_lead.png", leads,
                         [("test split, ocean pixels", lines)], xlabel="lead (days)",
                         ylabel="RMSE (% concentration)", title=f"{tag}: RMSE by lead day")
    edge = {metric: by_lead(metric) for metric, _ in EDGE_PLOTS}
    columns = {f"{name}_{m}": v for m, lines in edge.items() for name, v in lines.items()}
    plotting.write_csv(ctx.plots_dir / "edge_by_lead.csv", {"lead_day": leads, **columns})
    plotting.line_panels(ctx.plots_dir / "edge_by_lead.png", leads,
                         [(label, edge[m]) for m, label in EDGE_PLOTS],
                         xlabel="lead (days)", ylabel="score (panel title)",
                         title=f"{tag}: ice-edge scores by lead day (test split, valid cells)")
    ocean = mask[sample].any(axis=0) | mask.any(axis=(0, 1))
    concentration = plotting.MapScale("sea-ice concentration (%)", 0.0, 100.0, "Blues_r", location="bottom")
    error = plotting.MapScale("model - truth (percentage points)", -50.0, 50.0, "RdBu_r")
    panels = []
    for k in sorted({0, len(leads) // 2, len(leads) - 1}):
        for name, maps in (("truth", truth), ("model", candidates["model"]),
                           ("persistence", candidates["persistence"])):
            panels.append((f"{name}, lead {k + 1} d", 100 * np.where(ocean, maps[sample, k], np.nan),
                           concentration))
        panels.append((f"model - truth, lead {k + 1} d",
                       100 * np.where(ocean, candidates["model"][sample, k] - truth[sample, k], np.nan),
                       error))
    plotting.map_panels(ctx.plots_dir / "forecast_vs_truth.png", panels, ncols=4,
                        title=f"{tag}: forecast vs truth, test window {sample}")


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json: at every one of the 7 leads,
    a lower RMSE than both baselines and a lower IIEE than persistence."""
    rmse = [k for k in m["test"] if k.startswith("rmse_lead_")]
    iiee = [k for k in m["test"] if k.startswith("iiee_lead_")]
    return (len(rmse) == len(iiee) == 7 and all(m["test"][k] < b[k] for b in m["baselines"].values()
                                                for k in rmse)
            and all(m["test"][k] < m["baselines"]["persistence"][k] for k in iiee))
