"""A bad value set with `dvc exp run -S` stops at the check-params stage, before DVC deletes any
output; a good one reruns only the stages that read it."""

from __future__ import annotations

import json
from pathlib import Path

from dvc.utils.hydra import apply_overrides

from seqpipe.io import sha256_file
from tests.conftest import run


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


def test_a_good_value_reruns_only_the_stages_that_read_it(repo_copy: Path) -> None:
    repo = repo_copy
    targets = ["evaluate-bandwidth", "evaluate-freq_filter"]
    run(["dvc", "repro", *targets], repo)
    apply_overrides(repo / "params.yaml", ["models.freq_filter.train.lr=0.002"])  # what `-S` does
    status = json.loads(run(["dvc", "status", "--json", "--with-deps", *targets], repo).stdout)
    assert set(status) == {"check-params", "train-freq_filter"}, status
    rerun = run(["dvc", "repro", *targets], repo).stdout
    ran = {line.split("'")[1] for line in rerun.splitlines() if line.startswith("Running stage")}
    assert ran == {"check-params", "train-freq_filter", "evaluate-freq_filter"}, rerun
