"""Slow: each model at its default params through real `dvc repro`, checked against its aims.

Run with `make test-slow`. These are the numbers docs/models.md reports; a change that makes a model
miss its aim (or lose to its baselines) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqpipe import pipelines
from seqpipe.metrics import detail_file
from tests.conftest import run, write_params


@pytest.mark.slow
@pytest.mark.parametrize("name", pipelines.names())
def test_default_params_meet_the_aims(repo_copy: Path, name: str) -> None:
    write_params(repo_copy / "params.yaml", {})  # the repository's own defaults
    run(["dvc", "repro", f"evaluate-{name}"], repo_copy, timeout=1800)
    detail = json.loads((repo_copy / detail_file(name)).read_text())   # every number, not only the headline
    assert pipelines.get(name).stage("evaluate").quality_aim(detail), json.dumps(detail, indent=1)
