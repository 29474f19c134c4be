"""Plot files for `dvc plots`: CSV data series and PNG figures (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqpipe.io import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on first use (only evaluate draws)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_csv(path: Path, columns: dict[str, np.ndarray | Sequence], float_format: str = "%.6g") -> None:
    """Columns as a CSV, atomically (also used by `seqpipe predict` for its tables)."""
    with atomic_path(path) as tmp:
        pd.DataFrame(columns).to_csv(tmp, index=False, float_format=float_format)


def line_panels(path: Path, x: np.ndarray, panels: list[tuple[str, dict[str, np.ndarray]]],
                xlabel: str, faint: tuple[str, ...] = ()) -> None:
    """One subplot per (title, {label: y}) panel, stacked vertically; `faint` labels drawn thin and pale."""
    fig, axes = pyplot().subplots(len(panels), 1, figsize=(9, 2.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, lines) in zip(axes[:, 0], panels):
        for name, y in lines.items():
            ax.plot(x, y, label=name, lw=0.8 if name in faint else 1.6, alpha=0.4 if name in faint else 1.0)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper right", ncol=len(lines))
    axes[-1, 0].set_xlabel(xlabel)
    _save(fig, path)


def scatter_panels(path: Path, panels: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """Predicted vs actual, one square panel per (title, actual, predicted)."""
    fig, axes = pyplot().subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, actual, predicted) in zip(axes[0], panels):
        ax.scatter(actual, predicted, s=3, alpha=0.4)
        lo, hi = float(np.min(actual)), float(np.max(actual))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("actual")
    axes[0, 0].set_ylabel("predicted")
    _save(fig, path)


def map_panels(path: Path, panels: list[tuple[str, np.ndarray]], ncols: int, vmin: float = 0.0,
               vmax: float = 1.0, cmap: str = "Blues_r") -> None:
    """A grid of images (title, 2D array; NaN shows as blank) sharing one colour scale."""
    nrows = -(-len(panels) // ncols)
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (title, image) in zip(axes.ravel(), panels):
        shown = ax.imshow(image, vmin=vmin, vmax=vmax, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    _save(fig, path, tight=False)


def _save(fig: Any, path: Path, tight: bool = True) -> None:
    if tight:  # colorbars spanning several axes do not mix with tight_layout
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    pyplot().close(fig)
