"""ice_change on sea ice (G02135): the Siamese network on any grid, the pipeline end to end on tiny 16x16
GeoTIFF pairs, and a change map that keeps the input's CRS and transform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from seqpipe import layout
from seqpipe.cli import main
from seqpipe.data import seaice
from seqpipe.networks.siamese import SiameseChangeNet
from tests.conftest import error_lines

if TYPE_CHECKING:
    from tests.pipelines.conftest import G02135


def test_network_forward_backward_on_any_grid() -> None:
    torch.manual_seed(0)
    siamese = SiameseChangeNet(in_channels=1, base_channels=4, depth=3)
    logits = siamese(torch.rand(2, 2, 13, 10))
    assert logits.shape == (2, 13, 10)
    logits.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in siamese.parameters())


def test_pipeline_and_predict_keep_the_grid(workdir: Path, run_tiny_pipeline: Callable[[str], dict],
                                           g02135: type[G02135], capsys: pytest.CaptureFixture) -> None:
    metrics = run_tiny_pipeline("ice_change")
    assert {"f1", "iou", "precision", "recall", "accuracy"} == set(metrics["test"])
    assert set(metrics["baselines"]["abs_difference"]) == set(metrics["test"])
    pair = sorted(p for p in layout.raw_dir("ice_change").iterdir() if p.is_dir())[-1]
    before, after = sorted(pair.glob("N_*.tif"))
    out = workdir / "change.tif"
    assert main(["predict", "ice_change", "--before", str(before), "--after", str(after), "--output", str(out)]) == 0
    with rasterio.open(before) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform and dst.shape == src.shape
        assert dst.dtypes == ("uint8",) and dst.nodata == 255
        assert set(np.unique(dst.read(1))) <= {0, 1, 255}
        land = np.isin(src.read(1), (seaice.COAST, seaice.LAND, seaice.POLE_HOLE))
        assert (dst.read(1)[land] == 255).all()
    with rasterio.open(after) as src:
        codes = src.read(1)
    shifted = g02135.write(workdir / "shifted.tif", codes, transform=g02135.transform @ Affine.translation(1, 0))
    bad = workdir / "bad.tif"
    capsys.readouterr()
    assert main(["predict", "ice_change", "--before", str(before), "--after", str(shifted),
                 "--output", str(bad)]) == 1
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "shifted.tif: transform" in errors[0] and not bad.exists()
