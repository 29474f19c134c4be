"""DVC's run-cache works for every stage: a params set trained before is restored, not retrained.

Checkpoints live in models/MODEL/checkpoints/FINGERPRINT/, outside DVC's outputs, so no output is
`persist` (which turns the run-cache off) and a killed run still resumes from them."""

from __future__ import annotations

from pathlib import Path

import yaml

from seqpipe import pipelines
from seqpipe.io import sha256_file
from tests.conftest import REPO, run

LR = "models.bandwidth.train.lr"
CACHED = "Stage 'train-bandwidth' is cached - skipping run, checking out outputs"


def test_no_output_turns_the_run_cache_off() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert len(stages) == 1 + 4 * len(pipelines.names())  # check-params, then four per model
    flags = {(name, key) for name, stage in stages.items() for out in stage["outs"] if isinstance(out, dict)
             for options in out.values() for key, value in options.items() if key == "persist" and value}
    assert flags == set()


def test_lr_a_then_b_then_a_restores_the_first_model_from_the_run_cache(repo_copy: Path) -> None:
    repo = repo_copy
    first_lr = yaml.safe_load((repo / "params.yaml").read_text())["models"]["bandwidth"]["train"]["lr"]
    run(["dvc", "repro", "evaluate-bandwidth"], repo)
    model_a = sha256_file(repo / "models/bandwidth/model.pt")
    metrics_a = (repo / "metrics/bandwidth.json").read_bytes()

    other = run(["dvc", "exp", "run", "evaluate-bandwidth", "-S", f"{LR}={first_lr * 2}"], repo)
    assert "Running stage 'train-bandwidth'" in other.stdout, other.stdout
    assert sha256_file(repo / "models/bandwidth/model.pt") != model_a

    again = run(["dvc", "exp", "run", "evaluate-bandwidth", "-S", f"{LR}={first_lr}"], repo)
    assert CACHED in again.stdout, again.stdout
    assert "Running stage 'train-bandwidth'" not in again.stdout
    assert sha256_file(repo / "models/bandwidth/model.pt") == model_a
    assert (repo / "metrics/bandwidth.json").read_bytes() == metrics_a
