"""Fixtures of the reliability tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import tiny_overrides, write_params


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for good tiny data, made on first use by `good` (real synthetic downloads)."""
    root = tmp_path_factory.mktemp("base")
    write_params(root / "params.yaml", tiny_overrides())
    return root
