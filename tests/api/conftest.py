"""A repository copy whose tiny pipeline trained every model (`dvc repro train-*`), shared by the API
and docs/predict.md tests of this folder: the model files, data/raw and params.yaml that predict reads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from seqpipe import pipelines
from tests.conftest import copy_repo, run, tiny_overrides

# ice_change keeps the default pair dates (they come from these keys alone), so docs/predict.md's and the
# help's example, which names data/raw/ice_change/pair_0000's files, runs on the tiny copy as on a fresh clone
DEFAULT_PAIR_DATES = ("field.n_days", "n_pairs", "gap_min_days", "gap_max_days")


def trained_overrides() -> dict:
    keep = {f"models.ice_change.download.synthetic.{key}" for key in DEFAULT_PAIR_DATES}
    return {k: v for k, v in tiny_overrides().items() if k not in keep}


@pytest.fixture(scope="session")
def trained_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files in a fresh git repo with tiny params, after `dvc repro` of every train stage.
    Built once per test session: under xdist the first worker trains, the others wait on a file lock."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the one folder all workers of this session share
    dest, done = shared / "trained" / "repo", shared / "trained" / "done"
    done.parent.mkdir(exist_ok=True)
    with FileLock(str(shared / "trained.lock")):
        if not done.exists():
            shutil.rmtree(dest, ignore_errors=True)  # an earlier worker's attempt that failed
            copy_repo(dest, trained_overrides())
            run(["dvc", "repro", *[f"train-{name}" for name in pipelines.names()]], dest, timeout=900)
            done.touch()
    return dest
