"""ice_forecast scores on tiny hand-made maps whose answers are known by construction: IIEE (over, under),
extent accuracy and IoU, SSIM over valid pixels only, and the cell area preprocess takes from the grid."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine
from skimage.metrics import structural_similarity

from seqpipe.data.rasters import Grid
from seqpipe.errors import SeqpipeError
from seqpipe.pipelines.ice_forecast.preprocess import cell_area_km2
from seqpipe.pipelines.ice_forecast.scores import edge_errors, lead_scores, masked_ssim, scores

CELL = 625.0   # km^2: one 25 km x 25 km G02135 pixel


def maps(shape: tuple[int, ...] = (1, 4, 4)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth: ice (0.9) in the left half, open water (0.05) in the right; forecast = truth; all valid."""
    truth = np.full(shape, 0.05)
    truth[..., : shape[-1] // 2] = 0.9
    return truth, truth.copy(), np.ones(shape, dtype=bool)


def test_one_pixel_of_false_ice_is_one_cell_of_over_estimate() -> None:
    truth, forecast, mask = maps()
    forecast[0, 1, 3] = 0.15                       # at the threshold: ice
    errors = edge_errors(truth, forecast, mask, 0.15, CELL)
    assert (errors["over"].tolist(), errors["under"].tolist(), errors["iiee"].tolist()) == ([CELL], [0.0], [CELL])


def test_missed_ice_is_under_estimate_and_iiee_is_their_sum() -> None:
    truth, forecast, mask = maps((2, 4, 4))
    forecast[0, 0, 0] = forecast[0, 2, 1] = 0.149  # below the threshold: open water where the truth has ice
    forecast[1, 3, 2] = 0.5                         # and false ice in the second map
    errors = edge_errors(truth, forecast, mask, 0.15, CELL)
    assert errors["under"].tolist() == [2 * CELL, 0.0] and errors["over"].tolist() == [0.0, CELL]
    assert errors["iiee"].tolist() == [2 * CELL, CELL]


def test_invalid_pixels_are_not_scored() -> None:
    truth, forecast, mask = maps()
    forecast[0, 1, 3], mask[0, 1, 3] = 1.0, False   # wrong, but on land / a missing pixel
    assert edge_errors(truth, forecast, mask, 0.15, CELL)["iiee"].tolist() == [0.0]
    assert lead_scores(truth, forecast, mask, 0.15, CELL, 3)["rmse"] == 0.0


def test_extent_accuracy_and_iou() -> None:
    truth, forecast, mask = maps()                 # 8 ice cells of 16
    forecast[0, 0, 2] = 0.6                         # one false ice cell: union 9, intersection 8
    s = lead_scores(truth, forecast, mask, 0.15, CELL, 3)
    assert s["edge_accuracy"] == pytest.approx(15 / 16) and s["iou"] == pytest.approx(8 / 9)
    assert s["iiee"] == s["iiee_over"] == CELL and s["iiee_under"] == 0.0


def test_ssim_is_scikit_images_when_every_pixel_is_valid_and_ignores_invalid_ones() -> None:
    rng = np.random.default_rng(0)
    truth, forecast = rng.random((12, 10)), rng.random((12, 10))
    mask = np.ones((12, 10), dtype=bool)
    want = structural_similarity(truth, forecast, win_size=5, data_range=1.0)
    assert masked_ssim(truth, forecast, mask, 5) == pytest.approx(want)
    assert masked_ssim(truth, truth, mask, 5) == pytest.approx(1.0)
    garbage = truth.copy()
    garbage[:, :3], mask[:, :3] = 1.0 - truth[:, :3], False      # wrong only where nothing is scored
    assert masked_ssim(truth, garbage, mask, 5) == pytest.approx(1.0)
    assert masked_ssim(truth, forecast, mask, 5) < 0.5
    assert np.isnan(masked_ssim(truth, forecast, np.zeros_like(mask), 5))


def test_ssim_window_larger_than_the_map_names_the_key() -> None:
    truth, forecast, mask = maps()
    with pytest.raises(SeqpipeError, match="models.ice_forecast.evaluate.ssim_window: 7 exceeds .* 4x4"):
        masked_ssim(truth[0], forecast[0], mask[0], 7)


def test_scores_per_lead_and_their_mean() -> None:
    truth, forecast, mask = maps((3, 2, 4, 4))     # 3 windows, 2 leads
    forecast[0, 1, 0, 3] = 0.9                      # lead 2: one false ice cell in one of 3 windows
    s = scores(truth, forecast, mask, 0.15, CELL, 3)
    assert s["iiee_lead_1"] == 0.0 and s["iiee_lead_2"] == pytest.approx(CELL / 3)
    assert s["iiee"] == pytest.approx(CELL / 6) and s["ssim_lead_1"] == pytest.approx(1.0)
    assert {f"{m}_lead_{k}" for m in ("rmse", "mae", "iiee_over", "iiee_under", "iou", "edge_accuracy", "ssim")
            for k in (1, 2)} <= set(s)


def test_cell_area_comes_from_the_grid() -> None:
    transform = Affine(25000, 0, -200000, 0, -25000, 200000)
    assert cell_area_km2(Grid(CRS.from_epsg(3411), transform, 16, 16), 1, "raw") == CELL
    assert cell_area_km2(Grid(CRS.from_epsg(3411), transform, 16, 16), 2, "raw") == 4 * CELL
    feet = CRS.from_proj4("+proj=stere +lat_0=90 +lat_ts=70 +lon_0=-45 +units=us-ft")
    assert cell_area_km2(Grid(feet, Affine(1000, 0, 0, 0, -1000, 0), 4, 4), 1, "raw") == pytest.approx(0.0929, 1e-3)
    with pytest.raises(SeqpipeError, match="raw: CRS EPSG:4326 is not projected"):
        cell_area_km2(Grid(CRS.from_epsg(4326), Affine(0.25, 0, 0, 0, -0.25, 90), 4, 4), 1, "raw")
