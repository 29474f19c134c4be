"""ice_change evaluation: F1, IoU, precision, recall, accuracy on valid pixels, next to a thresholded
absolute-difference baseline whose threshold is tuned for F1 on the val split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np

from seqpipe import plotting
from seqpipe.metrics import binary_metrics_of, confusion_counts
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
CHUNK = 256   # pairs scored at a time


def abs_difference(x: np.ndarray) -> np.ndarray:
    """|after - before| of (N, 2, H, W) pairs."""
    return np.abs(x[:, 1] - x[:, 0])


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    # per-sample image pairs, each split memory-mapped and scored CHUNK pairs at a time (counts add up)
    test, val = ctx.windows("test"), ctx.windows("val")
    candidates_t = np.round(np.arange(0.01, 0.80, 0.01), 2)
    sweep_counts = np.zeros((len(candidates_t), 2, 2), np.int64)
    for part in _chunks(len(val["x"])):
        valid = val["mask"][part]
        score, changed = abs_difference(val["x"][part])[valid], val["y"][part][valid] >= 0.5
        for i, t in enumerate(candidates_t):
            sweep_counts[i] += confusion_counts(changed, score >= t)
    sweep = [binary_metrics_of(c)["f1"] for c in sweep_counts]
    threshold = float(candidates_t[int(np.argmax(sweep))])  # the baseline's threshold: best F1 on val
    logit = np.log(p.threshold / (1 - p.threshold))

    def predicted(part: slice) -> dict[str, np.ndarray]:
        return {"model": ctx.predictions[part] >= logit,
                "abs_difference": abs_difference(test["x"][part]) >= threshold}

    counts = {name: np.zeros((2, 2), np.int64) for name in ("model", "abs_difference")}
    for part in _chunks(len(test["y"])):
        valid, changed = test["mask"][part], test["y"][part] >= 0.5
        for name, pred in predicted(part).items():
            counts[name] += confusion_counts(changed[valid], pred[valid])
    results = {name: binary_metrics_of(c) for name, c in counts.items()}
    plotting.write_csv(ctx.plots_dir / "baseline_threshold_sweep.csv",
                       {"threshold": candidates_t, "val_f1": sweep})
    for name, c in counts.items():  # counts and row rates on the valid test pixels, one CSV per predictor
        file = "confusion.csv" if name == "model" else f"confusion_{name}.csv"
        plotting.write_csv(ctx.plots_dir / file, plotting.confusion_rows(c, list(CLASSES)))
    k = min(p.plot_sample, len(test["y"]) - 1)
    pair = slice(k, k + 1)
    _plot_pair(ctx, test["x"][k], test["y"][k] >= 0.5, test["mask"][k],
               {name: pred[0] for name, pred in predicted(pair).items()}, k)
    n_valid = int(counts["model"].sum())
    return {"test": results.pop("model"), "baselines": results,
            "baseline_threshold": {"abs_difference": threshold}, "n_test_pairs": len(test["y"]),
            "change_fraction_test": float(counts["model"][1].sum() / n_valid) if n_valid else float("nan")}


def _chunks(n: int) -> list[slice]:
    return [slice(k, k + CHUNK) for k in range(0, n, CHUNK)]


def _plot_pair(ctx: EvalContext, x: np.ndarray, truth: np.ndarray, valid: np.ndarray,
               changed: dict[str, np.ndarray], k: int) -> None:
    """change_maps.png for test pair `k` (its maps `x`, true change, valid pixels and each predictor's
    change): concentrations before and after, the true change, the model's and the baseline's, and the
    model's errors (model - truth: 1 false alarm, -1 missed); invalid pixels grey."""
    def shown(image: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return np.where(valid, scale * image.astype(np.float64), np.nan)

    tag = plotting.signature(ctx.name, ctx.fingerprint)
    concentration = plotting.MapScale("sea-ice concentration (%)", 0.0, 100.0, "Blues_r", "bottom")
    change = plotting.MapScale("change: 1 yes, 0 no", 0.0, 1.0, "Oranges", "bottom", ticks=(0.0, 1.0))
    error = plotting.MapScale("model - truth:\n1 false alarm, -1 missed", -1.0, 1.0, "RdBu_r", "bottom",
                              ticks=(-1.0, 0.0, 1.0))
    panels = [("before", shown(x[0], 100.0), concentration),
              ("after", shown(x[1], 100.0), concentration),
              ("true change", shown(truth), change), ("model", shown(changed["model"]), change),
              ("abs-difference baseline", shown(changed["abs_difference"]), change),
              ("model - truth", shown(changed["model"].astype(np.int8) - truth.astype(np.int8)), error)]
    plotting.map_panels(ctx.plots_dir / "change_maps.png", panels, ncols=6,
                        title=f"{tag}: change maps, test pair {k}")


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    test, baseline = m["test"], m["baselines"]["abs_difference"]
    return test["f1"] >= 0.9 and test["f1"] >= baseline["f1"] + 0.1 and test["iou"] > baseline["iou"]
