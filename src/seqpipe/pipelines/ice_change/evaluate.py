"""ice_change evaluation: F1, IoU, precision, recall, accuracy on valid pixels, next to a thresholded
absolute-difference baseline whose threshold is tuned for F1 on the val split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqpipe import plotting
from seqpipe.stages.evaluate import EvalContext
from seqpipe.metrics import binary_metrics
from seqpipe.params import check


# metrics/ice_change.json: F1 and IoU of the change class on valid pixels (each baseline the same);
# everything else goes to plots/ice_change/eval/metrics_detail.json
HEADLINE = ("f1", "iou")

@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int
    threshold: float           # change probability above which the model says "changed"
    plot_sample: int           # index of the test pair drawn in change_maps.png

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(0 < self.threshold < 1, "threshold", "must be in (0, 1)")
        check(self.plot_sample >= 0, "plot_sample", "must be >= 0")


def abs_difference(x: np.ndarray) -> np.ndarray:
    """|after - before| of (N, 2, H, W) pairs."""
    return np.abs(x[:, 1] - x[:, 0])


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    test, val = ctx.split("test"), ctx.split("val")
    truth, valid = test["y"] >= 0.5, test["mask"]
    candidates_t = np.round(np.arange(0.01, 0.80, 0.01), 2)

    val_score, val_truth = abs_difference(val["x"])[val["mask"]], val["y"][val["mask"]] >= 0.5
    sweep = [binary_metrics(val_truth, val_score >= t)["f1"] for t in candidates_t]
    threshold = float(candidates_t[int(np.argmax(sweep))])  # the baseline's threshold: best F1 on val
    logit = np.log(p.threshold / (1 - p.threshold))
    changed = {"model": ctx.predictions >= logit, "abs_difference": abs_difference(test["x"]) >= threshold}
    results = {name: binary_metrics(truth[valid], pred[valid]) for name, pred in changed.items()}
    plotting.write_csv(ctx.plots_dir / "baseline_threshold_sweep.csv", {"threshold": candidates_t, "val_f1": sweep})
    _plot_pair(ctx, test["x"], truth, valid, changed, min(p.plot_sample, len(truth) - 1))
    return {"test": results.pop("model"), "baselines": results,
            "baseline_threshold": {"abs_difference": threshold}, "n_test_pairs": len(truth),
            "change_fraction_test": float(truth[valid].mean())}


def _plot_pair(ctx: EvalContext, x: np.ndarray, truth: np.ndarray, valid: np.ndarray,
               changed: dict[str, np.ndarray], k: int) -> None:
    def shown(image: np.ndarray) -> np.ndarray:
        return np.where(valid[k], image, np.nan)

    panels = [("before", shown(x[k, 0])), ("after", shown(x[k, 1])), ("true change", shown(truth[k])),
              ("model", shown(changed["model"][k])), ("abs-difference baseline", shown(changed["abs_difference"][k]))]
    plotting.map_panels(ctx.plots_dir / "change_maps.png", panels, ncols=5)


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    test, baseline = m["test"], m["baselines"]["abs_difference"]
    return test["f1"] >= 0.9 and test["f1"] >= baseline["f1"] + 0.1 and test["iou"] > baseline["iou"]
