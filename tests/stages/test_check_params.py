"""A bad value set with `dvc exp run -S` stops at the check-params stage, before DVC deletes any
output. (That a good one reruns only the stages that read it: tests/stages/test_pipeline.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from seqpipe.io import sha256_file
from tests.conftest import run


@pytest.mark.slow  # a real train + a refused dvc exp run (~45 s); the CLI error itself is checked by the fast tests
def test_a_bad_value_fails_before_dvc_deletes_the_model(repo_copy: Path) -> None:
    repo = repo_copy
    run(["dvc", "repro", "evaluate-bandwidth"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "trained"], repo)
    model = sha256_file(repo / "models/bandwidth/model.pt")
    metrics = (repo / "metrics/bandwidth.json").read_bytes()

    failed = run(["dvc", "exp", "run", "evaluate-bandwidth", "-S", "models.bandwidth.train.epochs=abc"], repo,
                 check=False)
    assert failed.returncode != 0
    assert "params.yaml: models.bandwidth.train.epochs: expected an integer, got str 'abc'" in failed.stderr, failed.stderr
    assert "Running stage 'train-bandwidth'" not in failed.stdout
    assert sha256_file(repo / "models/bandwidth/model.pt") == model
    assert (repo / "metrics/bandwidth.json").read_bytes() == metrics

