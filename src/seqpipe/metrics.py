"""Metric functions shared by evaluations (numpy in, plain floats out)."""

from __future__ import annotations

import numpy as np


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, mape_floor: float | None = None) -> dict[str, float]:
    """MAE, MSE, RMSE, R-squared and Pearson correlation over all elements.

    With `mape_floor`, MAPE (percent) is added over the points where |y| >= mape_floor, so values
    near zero (e.g. packet loss) cannot blow it up; `mape_coverage` says what fraction was used.
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
        out["mape"] = float(np.mean(np.abs(error[used]) / np.abs(y_true[used])) * 100) if used.any() else float("nan")
        out["mape_coverage"] = float(used.mean())
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def mean_of(sections: dict[str, dict[str, float]]) -> dict[str, float]:
    """Key-wise mean across per-target sections."""
    keys = next(iter(sections.values())).keys()
    return {k: float(np.mean([s[k] for s in sections.values()])) for k in keys}


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and IoU of boolean predictions over all elements (0 when undefined)."""
    t = np.asarray(y_true, dtype=bool).ravel()
    p = np.asarray(y_pred, dtype=bool).ravel()
    tp, fp, fn = float(np.sum(t & p)), float(np.sum(~t & p)), float(np.sum(t & ~p))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"accuracy": float(np.mean(t == p)) if t.size else float("nan"), "precision": precision,
            "recall": recall, "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
            "iou": tp / (tp + fp + fn) if tp + fp + fn else 0.0}
def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro F1 and per-class precision/recall/F1/support (0 where a class is never predicted)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "macro_f1": float(np.mean(f1)),
            "per_class": {c: {"precision": float(precision[k]), "recall": float(recall[k]),
                              "f1": float(f1[k]), "support": int(support[k])} for k, c in enumerate(classes)}}
