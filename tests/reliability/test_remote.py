"""`dvc push` to a local-path remote, then a fresh `git clone` + `dvc pull` gets every output back.

The remote is a temp folder set in `.dvc/config.local` (as credentials would be), so the test never
writes to the default remote of `.dvc/config`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seqpipe import pipelines
from tests.conftest import file_hashes, lock_outs, run

STAGES = ("download", "preprocess", "train", "evaluate")


def output_hashes(repo: Path, stages: list[str]) -> dict[str, str]:
    """sha256 of every file under every output of `stages`, as recorded in dvc.lock."""
    hashes: dict[str, str] = {}
    for path in lock_outs(repo, *stages):
        hashes.update(file_hashes(repo / path, repo))
    return hashes


@pytest.mark.parametrize("models", [
    pytest.param(["bandwidth"], id="bandwidth"),
    pytest.param(None, marks=pytest.mark.slow, id="all-models"),
])
def test_push_then_clone_and_pull_restores_every_output(repo_copy: Path, tmp_path: Path,
                                                        models: list[str] | None) -> None:
    repo, remote = repo_copy, tmp_path / "remote"
    # one model: the other models' stages in dvc.lock stay at the main branch's defaults, so commands
    # name the model's stages; all models: the plain commands
    targets = [f"evaluate-{m}" for m in models] if models else []
    models = models or pipelines.names()
    stages = [f"{s}-{m}" for m in models for s in STAGES]
    scope = stages if targets else []
    run(["dvc", "repro", *targets], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "repro"], repo)
    run(["dvc", "remote", "add", "--local", "tmp", str(remote)], repo)
    run(["dvc", "push", "-r", "tmp", *scope], repo)
    assert "in sync" in run(["dvc", "status", "--cloud", "-r", "tmp", *scope], repo).stdout
    assert not (tmp_path / "seqpipe-dvc-remote").exists(), "pushed to the default remote"

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "models" / models[0] / "model.pt").exists()
    run(["dvc", "remote", "add", "--local", "-d", "tmp", str(remote)], clone)
    run(["dvc", "pull", *scope], clone)

    original = output_hashes(repo, stages)
    assert any(p.endswith("model.pt") for p in original)
    assert not any("checkpoints/" in p for p in original)  # resume state stays local, never an output
    assert output_hashes(clone, stages) == original
    status = run(["dvc", "status", *(["--with-deps", *targets] if targets else [])], clone).stdout
    assert "Data and pipelines are up to date." in status, status
    again = run(["dvc", "repro", *targets], clone).stdout
    assert "Running stage" not in again and "Data and pipelines are up to date." in again, again
