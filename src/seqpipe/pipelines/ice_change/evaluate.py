"""ice_change evaluation: F1, IoU, precision, recall, accuracy on valid pixels, next to a thresholded
absolute-difference baseline whose threshold is tuned for F1 on the val split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np

from seqpipe import plotting
from seqpipe.metrics import binary_metrics
from seqpipe.params import BatchSize, Range, params_section

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.stages.evaluate import EvalContext


# metrics/ice_change.json: F1 and IoU of the change class on valid pixels (each baseline the same);
# everything else goes to plots/ice_change/eval/metrics_detail.json
HEADLINE = ("f1", "iou")

@params_section
class EvaluateParams:
    batch_size: BatchSize
    # change probability above which the model says "changed"
    threshold: Annotated[float, Range(0, 1, low_open=True, high_open=True)]
    plot_sample: Annotated[int, Range(0, 10**6)]   # index of the test pair drawn in change_maps.png


CLASSES = np.array(["no change", "change"])


def abs_difference(x: np.ndarray) -> np.ndarray:
    """|after - before| of (N, 2, H, W) pairs."""
    return np.abs(x[:, 1] - x[:, 0])


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    # per-sample image pairs, not windows: each split memory-mapped; the baseline reads the pairs whole
    test, val = ctx.windows("test"), ctx.windows("val")
    truth, valid = test["y"] >= 0.5, test["mask"]
    candidates_t = np.round(np.arange(0.01, 0.80, 0.01), 2)

    val_score, val_truth = abs_difference(val["x"])[val["mask"]], val["y"][val["mask"]] >= 0.5
    sweep = [binary_metrics(val_truth, val_score >= t)["f1"] for t in candidates_t]
    threshold = float(candidates_t[int(np.argmax(sweep))])  # the baseline's threshold: best F1 on val
    logit = np.log(p.threshold / (1 - p.threshold))
    changed = {"model": ctx.predictions >= logit, "abs_difference": abs_difference(test["x"]) >= threshold}
    results = {name: binary_metrics(truth[valid], pred[valid]) for name, pred in changed.items()}
    plotting.write_csv(ctx.plots_dir / "baseline_threshold_sweep.csv",
                       {"threshold": candidates_t, "val_f1": sweep})
    for name, pred in changed.items():  # counts and row rates on the valid test pixels, one CSV per predictor
        file = "confusion.csv" if name == "model" else f"confusion_{name}.csv"
        plotting.write_csv(ctx.plots_dir / file, plotting.confusion_table(
            CLASSES[truth[valid].astype(int)], CLASSES[pred[valid].astype(int)], list(CLASSES)))
    _plot_pair(ctx, test["x"], truth, valid, changed, min(p.plot_sample, len(truth) - 1))
    return {"test": results.pop("model"), "baselines": results,
            "baseline_threshold": {"abs_difference": threshold}, "n_test_pairs": len(truth),
            "change_fraction_test": float(truth[valid].mean())}


def _plot_pair(ctx: EvalContext, x: np.ndarray, truth: np.ndarray, valid: np.ndarray,
               changed: dict[str, np.ndarray], k: int) -> None:
    """change_maps.png for test pair `k`: concentrations before and after, the true change, the model's and
    the baseline's, and the model's errors (model - truth: 1 false alarm, -1 missed); invalid pixels grey."""
    def shown(image: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return np.where(valid[k], scale * image.astype(np.float64), np.nan)

    tag = plotting.signature(ctx.name, ctx.fingerprint)
    concentration = plotting.MapScale("sea-ice concentration (%)", 0.0, 100.0, "Blues_r", "bottom")
    change = plotting.MapScale("change: 1 yes, 0 no", 0.0, 1.0, "Oranges", "bottom", ticks=(0.0, 1.0))
    error = plotting.MapScale("model - truth:\n1 false alarm, -1 missed", -1.0, 1.0, "RdBu_r", "bottom",
                              ticks=(-1.0, 0.0, 1.0))
    panels = [("before", shown(x[k, 0], 100.0), concentration),
              ("after", shown(x[k, 1], 100.0), concentration),
              ("true change", shown(truth[k]), change), ("model", shown(changed["model"][k]), change),
              ("abs-difference baseline", shown(changed["abs_difference"][k]), change),
              ("model - truth", shown(changed["model"][k].astype(np.int8) - truth[k].astype(np.int8)), error)]
    plotting.map_panels(ctx.plots_dir / "change_maps.png", panels, ncols=6,
                        title=f"{tag}: change maps, test pair {k}")


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    test, baseline = m["test"], m["baselines"]["abs_difference"]
    return test["f1"] >= 0.9 and test["f1"] >= baseline["f1"] + 0.1 and test["iou"] > baseline["iou"]
