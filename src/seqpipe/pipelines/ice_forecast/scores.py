"""Sea-ice forecast scores per lead day, as the field reports them: RMSE/MAE (percent concentration), the
integrated ice-edge error (IIEE, Goessling et al. 2016) with its over- and under-estimate, binary accuracy
and IoU of the ice extent (concentration >= the edge threshold), and SSIM (scikit-image).

Arrays are (window, lead, H, W) concentration fractions; `mask` is True on valid pixels (ocean, observed:
not land, not the pole hole, not a missing day). Only valid pixels are scored. SSIM is a windowed
statistic, so it cannot simply drop pixels: the forecast is set to the truth on invalid pixels (they add no
difference), scikit-image's SSIM map is computed on the whole map, and its mean is taken over the valid
pixels at least half a window from the border (as scikit-image crops its own mean); a map with no such
pixel is left out of its lead's mean.
"""

from __future__ import annotations

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.metrics import binary_metrics, regression_metrics


def cell_area_km2(stats: dict) -> float:
    """The area of one preprocessed cell, as preprocess recorded it from the grid (stats.json)."""
    if "cell_area_km2" not in stats:
        raise SeqpipeError("data/processed/ice_forecast/stats.json: no cell_area_km2 (written by an older "
                           "seqpipe); rerun: seqpipe preprocess ice_forecast")
    return float(stats["cell_area_km2"])


def edge_errors(truth: np.ndarray, forecast: np.ndarray, mask: np.ndarray, edge: float,
                cell_km2: float) -> dict[str, np.ndarray]:
    """Per window: the area (km^2) where the forecast has ice (>= `edge`) and the truth has not ("over"),
    the reverse ("under"), and their sum "iiee"; arrays of any shape (..., H, W) -> (...)."""
    ice_t, ice_f = truth >= edge, forecast >= edge
    over = (ice_f & ~ice_t & mask).sum(axis=(-2, -1)) * cell_km2
    under = (ice_t & ~ice_f & mask).sum(axis=(-2, -1)) * cell_km2
    return {"iiee": over + under, "over": over, "under": under}


def masked_ssim(truth: np.ndarray, forecast: np.ndarray, mask: np.ndarray, win_size: int) -> float:
    """SSIM of two (H, W) maps in [0, 1] over the valid pixels (see the module docstring); NaN if none."""
    from skimage.metrics import structural_similarity  # here: check-params imports this module, needs no SSIM

    height, width = truth.shape
    if win_size > min(height, width):
        raise SeqpipeError(f"models.ice_forecast.evaluate.ssim_window: {win_size} exceeds the "
                           f"preprocessed map size {height}x{width}; lower it (odd, >= 3)")
    _, ssim_map = structural_similarity(truth.astype(np.float64),
                                        np.where(mask, forecast, truth).astype(np.float64),
                                        win_size=win_size, data_range=1.0, full=True)
    pad = (win_size - 1) // 2
    inner = np.zeros_like(mask)
    inner[pad:height - pad, pad:width - pad] = True
    valid = mask & inner
    return float(ssim_map[valid].mean()) if valid.any() else float("nan")


def lead_scores(truth: np.ndarray, forecast: np.ndarray, mask: np.ndarray, edge: float, cell_km2: float,
                ssim_window: int) -> dict[str, float]:
    """The scores of one lead day: arrays (window, H, W). IIEE and its parts are means over the windows
    (km^2 per map), accuracy and IoU pool every valid pixel, SSIM is the mean over the windows."""
    reg = regression_metrics(100 * truth[mask], 100 * forecast[mask])
    extent = binary_metrics(truth[mask] >= edge, forecast[mask] >= edge)
    errors = edge_errors(truth, forecast, mask, edge, cell_km2)
    ssim = [masked_ssim(t, f, m, ssim_window) for t, f, m in zip(truth, forecast, mask, strict=True)]
    ssim_mean = float(np.nanmean(ssim)) if not np.isnan(ssim).all() else float("nan")
    return {"rmse": reg["rmse"], "mae": reg["mae"], "iiee": float(errors["iiee"].mean()),
            "iiee_over": float(errors["over"].mean()), "iiee_under": float(errors["under"].mean()),
            "edge_accuracy": extent["accuracy"], "iou": extent["iou"], "ssim": ssim_mean}


def scores(truth: np.ndarray, forecast: np.ndarray, mask: np.ndarray, edge: float, cell_km2: float,
           ssim_window: int) -> dict[str, float]:
    """Every lead's scores as `<name>_lead_<k>` (k from 1) and each score's mean over the leads as `<name>`;
    arrays are (window, lead, H, W)."""
    per_lead = [lead_scores(truth[:, k], forecast[:, k], mask[:, k], edge, cell_km2, ssim_window)
                for k in range(truth.shape[1])]
    means = {name: float(np.mean([s[name] for s in per_lead])) for name in per_lead[0]}
    return {**means, **{f"{name}_lead_{k + 1}": value for k, s in enumerate(per_lead)
                        for name, value in s.items()}}
