"""Plot files for `dvc plots`: CSV data series and PNG figures (matplotlib, Agg backend).

Every figure carries a title naming the model and its training fingerprint (`signature`): a content hash
of params, data and code, so the PNG bytes depend on the inputs only, never on git history or the clock.
Maps draw NaN (land, masked or missing pixels) in grey (`MASKED_COLOUR`), and each colourbar names its unit.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.io import atomic_path

MASKED_COLOUR = "0.55"  # grey: NaN pixels in maps (land, masked, no data)
# One colour per kind of series, as in the `dvc plots` templates (.dvc/plots/series.json): the reference
# grey, the model blue, each baseline its own; a label not listed takes matplotlib's next colour.
SERIES_COLOURS = {"actual": "#333333", "observed": "#333333", "clean": "#333333", "truth": "#333333",
                  "model": "#1f77b4", "predicted": "#1f77b4", "LSTM": "#1f77b4", "BiLSTM": "#1f77b4",
                  "persistence": "#ff7f0e", "climatology": "#2ca02c", "band-pass": "#d62728",
                  "bandpass": "#d62728", "ridge": "#9467bd", "linear": "#8c564b", "input mix": "#999999"}


def new_figure(**kwargs: Any) -> Any:
    """A matplotlib Figure drawn by Agg, imported on first use (only evaluate draws). No pyplot: its import
    and global figure registry cost each evaluate stage about half a second and buy nothing here."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def signature(model: str, fingerprint: str) -> str:
    """The figure tag: model name and training fingerprint (not the git commit: same inputs, same bytes)."""
    return f"{model} (model {fingerprint})"


def write_csv(path: Path, columns: Mapping[str, np.ndarray | Sequence], float_format: str = "%.6g") -> None:
    """Columns as a CSV, atomically (also used by `seqpipe predict` for its tables); NaN is an empty cell.
    The bytes are those of pandas' `DataFrame(columns).to_csv(index=False, float_format=...)`, without
    importing pandas."""
    cells = [_csv_cells(np.asarray(values), float_format) for values in columns.values()]
    if len({len(column) for column in cells}) > 1:
        raise ValueError("All arrays must be of the same length")
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8",
                                        errors="surrogateescape") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(list(columns))
        writer.writerows(zip(*cells, strict=True))


def _csv_cells(values: np.ndarray, float_format: str) -> list[str]:
    """One column's cells as pandas writes them: floats through `float_format` (NaN empty), the rest as
    str."""
    if values.ndim != 1:
        raise ValueError(f"a CSV column must be one-dimensional, not shaped {values.shape}")
    if values.dtype.kind == "f":
        return ["" if v != v else float_format % v for v in values.tolist()]
    return [str(v) for v in values.tolist()]


def confusion_table(actual: Sequence[str], predicted: Sequence[str],
                    classes: Sequence[str]) -> dict[str, list]:
    """Columns actual, predicted, count, rate (count / row total of `actual`), one row per cell, for a CSV;
    values not in `classes` are not counted."""
    def positions(values: Sequence[str]) -> np.ndarray:
        names, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
        where = {name: k for k, name in enumerate(classes)}
        return np.array([where.get(name, -1) for name in names.tolist()], dtype=np.int64)[inverse.ravel()]

    a, p = positions(actual), positions(predicted)
    known = (a >= 0) & (p >= 0)
    counts = np.bincount(a[known] * len(classes) + p[known], minlength=len(classes) ** 2).reshape(
        len(classes), len(classes)).astype(np.int64)
    return confusion_rows(counts, classes)


def confusion_rows(counts: np.ndarray, classes: Sequence[str]) -> dict[str, list]:
    """confusion_table's columns from the counts themselves (rows actual, columns predicted, in the order
    of `classes`)."""
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    cells = [(a, p) for a in range(len(classes)) for p in range(len(classes))]
    return {"actual": [classes[a] for a, _ in cells], "predicted": [classes[p] for _, p in cells],
            "count": [int(counts[c]) for c in cells], "rate": [float(rates[c]) for c in cells]}


def line_panels(path: Path, x: np.ndarray, panels: list[tuple[str, dict[str, np.ndarray]]], xlabel: str,
                ylabel: str, title: str, faint: tuple[str, ...] = ()) -> None:
    """One subplot per (title, {label: y}) panel, stacked vertically, the legend outside on the right (it
    hides no data); `faint` labels drawn thin and pale; NaN breaks a line."""
    fig = new_figure(figsize=(10, 1.0 + 2.2 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (panel_title, lines) in zip(axes[:, 0], panels, strict=True):
        for name, y in lines.items():
            ax.plot(x, y, label=name, lw=0.8 if name in faint else 1.6, alpha=0.4 if name in faint else 1.0,
                    marker="." if len(x) <= 80 else None, ms=3, color=SERIES_COLOURS.get(name))
        ax.set_title(panel_title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def band_panels(path: Path, x: np.ndarray,
                panels: list[tuple[str, np.ndarray, np.ndarray, list[tuple[str, np.ndarray, np.ndarray]]]],
                xlabel: str, title: str) -> None:
    """One subplot per (title, actual, forecast, [(band label, lower, upper), ...]) panel: the forecast's
    interval bands shaded, the widest palest, under the actual and forecast lines."""
    fig = new_figure(figsize=(10, 1.0 + 2.2 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (panel_title, actual, forecast, bands) in zip(axes[:, 0], panels, strict=True):
        for i, (label, lower, upper) in enumerate(sorted(bands,
                                                         key=lambda b: -float(np.nanmean(b[2] - b[1])))):
            ax.fill_between(x, lower, upper, color=SERIES_COLOURS["model"], alpha=0.12 + 0.12 * i, lw=0,
                            label=f"{label} interval")
        ax.plot(x, actual, lw=1.2, color=SERIES_COLOURS["actual"], label="actual")
        ax.plot(x, forecast, lw=1.2, color=SERIES_COLOURS["model"], label="forecast")
        ax.set_title(panel_title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def scatter_panels(path: Path, panels: list[tuple[str, np.ndarray, np.ndarray, str]], title: str) -> None:
    """Predicted vs actual, one square panel per (title, actual, predicted, unit), with the y = x line."""
    fig = new_figure(figsize=(3.3 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (panel_title, actual, predicted, unit) in zip(axes[0], panels, strict=True):
        ax.scatter(actual, predicted, s=3, alpha=0.4, label="test windows")
        lo, hi = float(np.nanmin(actual)), float(np.nanmax(actual))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="predicted = actual")
        ax.set_title(panel_title, fontsize=9)
        ax.set_xlabel(f"actual ({unit})", fontsize=8)
        ax.set_ylabel(f"predicted ({unit})", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left", markerscale=3)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


@dataclass(frozen=True)
class MapScale:
    """One colour scale of a map figure: its colourbar label (with the unit), range and colormap."""

    label: str
    vmin: float
    vmax: float
    cmap: str = "Blues_r"
    location: str = "right"   # where its colourbar goes: "right" or "bottom"
    ticks: tuple[float, ...] | None = None


def map_panels(path: Path, panels: list[tuple[str, np.ndarray, MapScale]], ncols: int, title: str) -> None:
    """A grid of images (title, 2D array, scale); panels with the same scale share one colourbar, labelled
    with its unit; NaN pixels (land, masked, no data) are grey, named in the figure's footnote."""
    from matplotlib import colormaps

    nrows = -(-len(panels) // ncols)
    fig = new_figure(figsize=(2.5 * ncols + 1.2, 2.7 * nrows + 1.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    shown: dict[MapScale, tuple[Any, list]] = {}
    for ax, (panel_title, image, scale) in zip(axes.ravel(), panels, strict=False):
        cmap = colormaps[scale.cmap].with_extremes(bad=MASKED_COLOUR)
        image = np.ma.masked_invalid(np.asarray(image, dtype=np.float64))
        artist = ax.imshow(image, vmin=scale.vmin, vmax=scale.vmax, cmap=cmap, interpolation="nearest")
        ax.set_title(panel_title, fontsize=8)
        shown.setdefault(scale, (artist, []))[1].append(ax)
    for scale, (artist, used) in shown.items():
        fig.colorbar(artist, ax=used, shrink=0.85, location=scale.location, label=scale.label,
                     ticks=scale.ticks)
    fig.suptitle(title, fontsize=10)
    fig.text(0.01, 0.005, "grey: land / masked / no data", fontsize=7, color="0.3")
    _save(fig, path, tight=False)


def _save(fig: Any, path: Path, tight: bool = True) -> None:
    if tight:  # colorbars spanning several axes use the constrained layout instead
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
