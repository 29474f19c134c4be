"""The real `dvc` CLI on a temp copy of the repository, with tiny params."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from seqpipe import pipelines
from seqpipe.metrics import detail_file, headline
from tests.conftest import run

STAGES = ("download", "preprocess", "train", "evaluate")
CHECK = "check-params"  # every stage depends on its output
MODELS = pipelines.names()


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def dvc_status(repo: Path) -> dict:
    return json.loads(run(["dvc", "status", "--json"], repo).stdout)


def touch_source(repo: Path, rel: str) -> None:
    """A real edit of one source file (a comment appended): its hash, so DVC's view, changes."""
    path = repo / rel
    path.write_text(path.read_text() + "\n# edited by test_pipeline\n")


def test_repro_then_param_change_reruns_only_that_model(repo_copy: Path) -> None:
    repo = repo_copy
    models = MODELS
    every = {CHECK} | {f"{s}-{m}" for s in STAGES for m in models}
    assert set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]) == every
    first = run(["dvc", "repro"], repo)
    assert ran_stages(first.stdout) == every
    for model in models:
        metrics = json.loads((repo / "metrics" / f"{model}.json").read_text())
        assert metrics["test"] and metrics["baselines"]
        for baseline in metrics["baselines"].values():
            assert set(baseline) == set(metrics["test"])
        # metrics/<model>.json is the headline of the detail the eval plots folder holds
        detail = json.loads((repo / detail_file(model)).read_text())
        assert metrics == headline(detail, pipelines.get(model).stage("evaluate").HEADLINE)
        assert (repo / "models" / model / "model.pt").exists()
        card = json.loads((repo / "models" / model / "model_card.json").read_text())
        assert card["parameters"] > 0 and card["data"]["provenance"]["source"] == "synthetic"
        assert (repo / "plots" / model / "train" / "plots" / "metrics" / "val" / "loss.tsv").exists()
    assert dvc_status(repo) == {}
    assert "Stage 'evaluate-bandwidth' didn't change" in run(["dvc", "repro"], repo).stdout

    # an experiment in a fresh copy (as queued experiments run) reruns only the changed model
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "repro"], repo)
    exp = run(["dvc", "exp", "run", "--temp", "-S", "models.bandwidth.train.lr=0.002"], repo)
    assert ran_stages(exp.stdout) == {CHECK, "train-bandwidth", "evaluate-bandwidth"}, exp.stdout
    assert "models.bandwidth.train.lr" in run(["dvc", "exp", "show", "--md"], repo).stdout

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"]["bandwidth"]["train"]["lr"] = 0.004  # not the default
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert set(dvc_status(repo)) == {CHECK, "train-bandwidth"}
    second = run(["dvc", "repro"], repo)
    assert ran_stages(second.stdout) == {CHECK, "train-bandwidth", "evaluate-bandwidth"}
    assert dvc_status(repo) == {}

    # editing a file reruns exactly the stages that import it (dvc.yaml lists each stage's imports as deps)
    touch_source(repo, "src/seqpipe/pipelines/bandwidth/evaluate.py")
    # (check-params imports every model's params classes, so it reruns too; its output never changes)
    assert set(dvc_status(repo)) == {CHECK, "evaluate-bandwidth"}
    assert ran_stages(run(["dvc", "repro"], repo).stdout) == {CHECK, "evaluate-bandwidth"}
    touch_source(repo, "src/seqpipe/pipelines/freq_filter/preprocess.py")
    assert set(dvc_status(repo)) == {CHECK, "preprocess-freq_filter"}
    # the same arrays come out, so training (whose dep they are) does not rerun
    assert ran_stages(run(["dvc", "repro"], repo).stdout) == {CHECK, "preprocess-freq_filter"}
    lstm = {m for m in models if pipelines.get(m).network_module == "lstm"}
    assert {"bandwidth", "freq_filter"} <= lstm < set(models)
    touch_source(repo, "src/seqpipe/networks/lstm.py")  # the network of some models: their train and evaluate
    network_stages = {f"{s}-{m}" for s in ("train", "evaluate") for m in lstm}
    assert set(dvc_status(repo)) == network_stages
    assert ran_stages(run(["dvc", "repro"], repo).stdout) == network_stages
    for rel in ("src/seqpipe/stages/predict.py", "src/seqpipe/stages/export.py"):  # imported by no stage
        touch_source(repo, rel)
    assert dvc_status(repo) == {}

    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
    assert any("metrics/bandwidth.json" in json.dumps(v) for v in shown.values())
    run(["dvc", "plots", "show", "-o", "dvc_plots"], repo)
    assert (repo / "dvc_plots" / "index.html").exists()


@pytest.mark.slow  # every data stage twice (~100 s of CPU); the per-model generators have fast determinism tests
def test_data_stages_are_byte_deterministic(repo_copy: Path) -> None:
    repo = repo_copy
    targets = [f"{stage}-{m}" for stage in ("download", "preprocess") for m in MODELS]
    run(["dvc", "repro", *targets], repo)
    before = (repo / "dvc.lock").read_text()
    run(["dvc", "repro", "--force", *targets], repo)
    assert (repo / "dvc.lock").read_text() == before
