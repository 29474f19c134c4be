"""Metric functions shared by evaluations (numpy in, plain floats out), which way each metric is
better, and the split of an evaluation into its headline (metrics/<model>.json) and its detail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe import layout
from seqpipe.errors import SeqpipeError

# Which way each common metric is better: the one place the reports (seqpipe.report), the evaluate
# log line and the tests read it from; a model's own metrics add theirs (its ModelSpec's
# `metric_directions`). A name matches itself or itself plus a suffix after "_" (rmse_lead_3, mse_1hz,
# accuracy_lead_2); NO_DIRECTION wins over both (mape_coverage is a share of the data, not a score).
HIGHER_IS_BETTER = frozenset({"accuracy", "balanced_accuracy", "correlation", "f1", "iou",
                              "macro_f1", "precision", "r2", "recall", "auc"})
LOWER_IS_BETTER = frozenset({"mae", "mape", "mase", "mse", "rmse", "loss", "error"})
NO_DIRECTION = frozenset({"mape_coverage", "support"})

DETAIL_FILE = "metrics_detail.json"   # the whole evaluation, beside the model's plots


def direction(key: str, own: Mapping[str, int] | None = None) -> int | None:
    """+1 when a larger value of metric `key` is better, -1 when a smaller one is, None when unknown.

    `key` may be a dotted path (`baselines.ridge.rmse`): its last part is the metric name. `own` holds a
    model's own metrics (name: +1 or -1), as its ModelSpec's `metric_directions`."""
    name = key.rsplit(".", 1)[-1]
    if name in NO_DIRECTION:
        return None
    parts = name.split("_")
    for end in range(len(parts), 0, -1):
        stem = "_".join(parts[:end])
        if own and stem in own:
            return own[stem]
        if stem in HIGHER_IS_BETTER:
            return 1
        if stem in LOWER_IS_BETTER:
            return -1
    return None


def detail_file(name: str) -> Path:
    """plots/<name>/eval/metrics_detail.json: every number of the evaluation (per target, per lead,
    per class, goals, counts); metrics/<name>.json holds only its headline."""
    return layout.eval_plots_dir(name) / DETAIL_FILE


def headline(detail: dict[str, Any], keys: Sequence[str],
             own: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The few numbers of an evaluation that `dvc exp show` and the PR report compare.

    `detail` is what a model's `evaluate` returns: the model's section under "test" and one section
    per baseline under "baselines"; `own` the model's own metric directions. `keys` (the model's HEADLINE)
    are paths inside a section, e.g.
    "rmse" or "mean.rmse"; each is kept under its last part, for the model and every baseline:
    {"test": {"rmse": ...}, "baselines": {"persistence": {"rmse": ...}, ...}}."""
    if not keys:
        raise SeqpipeError("HEADLINE: names no metric")
    names = [k.rsplit(".", 1)[-1] for k in keys]
    if len(set(names)) != len(names):
        raise SeqpipeError(f"HEADLINE {tuple(keys)}: two keys end in the same name")
    unknown = [k for k in keys if direction(k, own) is None]
    if unknown:
        raise SeqpipeError(f"HEADLINE key(s) {unknown}: not in seqpipe.metrics.HIGHER_IS_BETTER or "
                           "LOWER_IS_BETTER nor the model's metric_directions, so no report can say "
                           "whether a change is better")

    def pick(section: dict[str, Any], where: str) -> dict[str, float]:
        out = {}
        for key, name in zip(keys, names, strict=True):
            value: Any = section
            for part in key.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise SeqpipeError(f"HEADLINE key {key!r}: not in the evaluation's {where}")
                value = value[part]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SeqpipeError(f"HEADLINE key {key!r}: {where} holds {value!r}, not a number")
            out[name] = float(value)
        return out

    return {"test": pick(detail["test"], "test"),
            "baselines": {b: pick(section, f"baselines.{b}")
                          for b, section in detail.get("baselines", {}).items()}}


def headline_line(head: dict[str, Any]) -> str:
    """One log line: 'rmse=4.657 mae=3.073 (persistence: rmse=16.71 mae=12.2; ridge: ...)'."""
    def pairs(section: dict[str, float]) -> str:
        return " ".join(f"{k}={v:.4g}" for k, v in section.items())
    baselines = "; ".join(f"{b}: {pairs(s)}" for b, s in head["baselines"].items())
    return pairs(head["test"]) + (f" ({baselines})" if baselines else "")


def mase_scale(actual: np.ndarray, naive: np.ndarray, where: str) -> float:
    """The MASE denominator (Hyndman & Koehler 2006): the in-sample MAE of the seasonal naive forecast
    `naive` of the training targets `actual`. Zero (a constant training series) is refused naming `where`."""
    scale = float(np.mean(np.abs(np.asarray(actual, np.float64) - np.asarray(naive, np.float64))))
    if not scale > 0:
        raise SeqpipeError(f"{where}: the seasonal naive forecast of the training targets is exact (MAE "
                           f"{scale:g}), so MASE is undefined; is the training series constant?")
    return scale


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, mape_floor: float | None = None,
                       mase_scale: float | None = None) -> dict[str, float]:
    """MAE, MSE, RMSE, R-squared and Pearson correlation over all elements.

    With `mape_floor`, MAPE (percent) is added over the points where |y| >= mape_floor, so values
    near zero (e.g. packet loss) cannot blow it up; `mape_coverage` says what fraction was used.
    With `mase_scale` (see `mase_scale`), MASE = MAE / mase_scale is added: below 1, the forecast errs
    less than the seasonal naive forecast did in-sample on the training data.
    """
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    error = y_pred - y_true
    mse = float(np.mean(error**2))
    variance = float(np.var(y_true))
    out = {"mae": float(np.mean(np.abs(error))), "mse": mse, "rmse": float(np.sqrt(mse)),
           "r2": 1.0 - mse / variance if variance > 0 else float("nan"),
           "correlation": pearson(y_true, y_pred)}
    if mape_floor is not None:
        used = np.abs(y_true) >= mape_floor
        out["mape"] = (float(np.mean(np.abs(error[used]) / np.abs(y_true[used])) * 100) if used.any()
                       else float("nan"))
        out["mape_coverage"] = float(used.mean())
    if mase_scale is not None:
        out["mase"] = out["mae"] / mase_scale
    return out


def baseline_goal(model: dict[str, dict[str, float]],
                  baselines: dict[str, dict[str, dict[str, float]]]) -> dict:
    """Per target, whether the model beats every baseline on RMSE and has MASE < 1, and overall.

    `model` maps target -> metrics (with "rmse" and "mase"); `baselines` maps baseline -> target ->
    metrics."""
    per_target = {}
    for target, m in model.items():
        best = min(baselines, key=lambda b: baselines[b][target]["rmse"])
        per_target[target] = {"met": bool(m["rmse"] < baselines[best][target]["rmse"] and m["mase"] < 1),
                              "rmse": m["rmse"], "mase": m["mase"], "best_baseline": best,
                              "best_baseline_rmse": baselines[best][target]["rmse"]}
    return {"rule": "per target: RMSE below every baseline's and MASE < 1", "per_target": per_target,
            "met": all(t["met"] for t in per_target.values())}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def mean_of(sections: dict[str, dict[str, float]]) -> dict[str, float]:
    """Key-wise mean across per-target sections."""
    keys = next(iter(sections.values())).keys()
    return {k: float(np.mean([s[k] for s in sections.values()])) for k in keys}


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """[[true negatives, false positives], [false negatives, true positives]] of boolean arrays (int64):
    counts add up, so chunks of a split can be scored one at a time."""
    t = np.asarray(y_true, dtype=bool).ravel()
    p = np.asarray(y_pred, dtype=bool).ravel()
    tp = np.count_nonzero(t & p)
    fp, fn = np.count_nonzero(p) - tp, np.count_nonzero(t) - tp
    return np.array([[t.size - tp - fp - fn, fp], [fn, tp]], np.int64)


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and IoU of boolean predictions over all elements (0 when undefined)."""
    return binary_metrics_of(confusion_counts(y_true, y_pred))


def binary_metrics_of(counts: np.ndarray) -> dict[str, float]:
    """binary_metrics from confusion_counts (or their sum over chunks)."""
    (tn, fp), (fn, tp) = (map(float, row) for row in counts)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    n = tn + fp + fn + tp
    return {"accuracy": (tp + tn) / n if n else float("nan"), "precision": precision,
            "recall": recall, "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "iou": tp / (tp + fp + fn) if tp + fp + fn else 0.0}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro F1 and per-class precision/recall/F1/support (0 where undefined, as scikit-learn's
    zero_division=0)."""
    k = len(classes)
    t, p = np.asarray(y_true, dtype=np.int64).ravel(), np.asarray(y_pred, dtype=np.int64).ravel()
    confusion = np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.float64)
    hits, predicted, support = np.diag(confusion), confusion.sum(axis=0), confusion.sum(axis=1)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)
    precision, recall = ratio(hits, predicted), ratio(hits, support)
    f1 = ratio(2 * hits, predicted + support)
    return {"accuracy": float(hits.sum() / len(t)), "macro_f1": float(np.mean(f1)),
            "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]),
                              "f1": float(f1[i]), "support": int(support[i])} for i, c in enumerate(classes)}}
