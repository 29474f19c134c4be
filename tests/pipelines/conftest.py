"""Shared by the per-model tests: G02135 sea-ice GeoTIFFs written with rasterio directly (not through
seqpipe), a model's tiny pipeline run through the real stages in `workdir`, and the CLI's error output."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from seqpipe import pipelines
from seqpipe.data import seaice
from seqpipe.params import Params
from seqpipe.stages import download, evaluate, preprocess, train
from tests.conftest import error_lines

LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) ")   # seqpipe.cli.LOG_FORMAT


class G02135:
    """Tiny (16x16 around the pole) G02135-style concentration GeoTIFFs."""

    transform = Affine(25000.0, 0.0, -200000.0, 0.0, -25000.0, 200000.0)

    @classmethod
    def write(cls, path: Path, codes: np.ndarray, crs: CRS | None = None, transform: Affine | None = None,
              dtype: str = "uint16") -> Path:
        profile = {"driver": "GTiff", "height": codes.shape[0], "width": codes.shape[1], "count": 1, "dtype": dtype,
                   "crs": crs or CRS.from_epsg(3411), "transform": cls.transform if transform is None else transform}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(codes.astype(dtype), 1)
        return path

    @staticmethod
    def codes(seed: int) -> np.ndarray:
        """Random concentrations with a pole hole in the middle, land in columns 0-1 and coast in column 2."""
        rng = np.random.default_rng(seed)
        codes = rng.integers(0, 1001, (16, 16)).astype(np.uint16)
        codes[7:9, 7:9] = seaice.POLE_HOLE
        codes[:, :2], codes[:, 2] = seaice.LAND, seaice.COAST
        return codes


@pytest.fixture
def g02135() -> type[G02135]:
    return G02135


@pytest.fixture
def run_tiny_pipeline(tiny_params: Params, workdir: Path) -> Callable[[str], dict]:
    """download, preprocess, train and evaluate one model with the tiny params; returns its metrics."""
    def run_pipeline(name: str) -> dict:
        spec = pipelines.get(name)
        download.run(spec, tiny_params)
        preprocess.run(spec, tiny_params)
        train.run(spec, tiny_params)
        return evaluate.run(spec, tiny_params)
    return run_pipeline


def assert_one_error_line(stderr: str, expected: str) -> None:
    """A failed CLI run's stderr: its log lines, then `expected` as the one and only error line (no traceback)."""
    lines = stderr.strip().splitlines()
    assert error_lines(stderr) == [expected] and lines[-1] == expected, stderr
    assert all(LOG_LINE.match(line) for line in lines[:-1]), stderr
