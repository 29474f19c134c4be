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


# Three tests of two models each (an LSTM model and a raster one); within a group every "reruns only" claim is
# checked against the group's other model. The first runs by default, the other two (about 150 s of CPU) with
# the slow tests: tests/stages/test_deps.py runs every stage of every model by default.
GROUPS = [("bandwidth", "ice_type"), ("freq_filter", "ice_change"), ("crop_ndvi", "ice_forecast")]


def group_status(repo: Path, group: tuple[str, ...]) -> dict:
    targets = [f"evaluate-{m}" for m in group]
    return json.loads(run(["dvc", "status", "--with-deps", "--json", *targets], repo).stdout)


def test_groups_cover_every_model() -> None:
    assert sorted(m for g in GROUPS for m in g) == sorted(MODELS)


@pytest.mark.parametrize("group", [pytest.param(g, id="-".join(g), marks=[] if g == GROUPS[0] else [pytest.mark.slow])
                                   for g in GROUPS])
def test_repro_then_change_reruns_only_what_changed(repo_copy: Path, group: tuple[str, str]) -> None:
    repo, (lstm_model, raster_model) = repo_copy, group
    assert pipelines.get(lstm_model).network_module in ("lstm", "forecaster")
    assert pipelines.get(raster_model).network_module not in ("lstm", "forecaster")
    every = {CHECK} | {f"{s}-{m}" for s in STAGES for m in MODELS}
    assert set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]) == every
    targets = [f"evaluate-{m}" for m in group]
    first = run(["dvc", "repro", *targets], repo)
    assert ran_stages(first.stdout) == {CHECK} | {f"{s}-{m}" for s in STAGES for m in group}
    for model in group:
        metrics = json.loads((repo / "metrics" / f"{model}.json").read_text())
        assert metrics["test"] and metrics["baselines"]
        for baseline in metrics["baselines"].values():
            assert set(baseline) == set(metrics["test"])
        # metrics/<model>.json is the headline of the detail the eval plots folder holds
        detail = json.loads((repo / detail_file(model)).read_text())
        assert metrics == headline(detail, pipelines.get(model).stage("evaluate").HEADLINE,
                                   pipelines.get(model).metric_directions)
        assert (repo / "models" / model / "model.pt").exists()
        card = json.loads((repo / "models" / model / "model_card.json").read_text())
        assert card["parameters"] > 0 and card["data"]["provenance"]["source"] == "synthetic"
        assert (repo / "plots" / model / "train" / "plots" / "metrics" / "val" / "loss.tsv").exists()
    assert group_status(repo, group) == {}
    assert f"Stage 'evaluate-{lstm_model}' didn't change" in run(["dvc", "repro", *targets], repo).stdout

    # the DVC commands whose outcome does not depend on the models run in the first group only
    once = group == GROUPS[0]
    if once:  # an experiment in a fresh copy (as queued experiments run) reruns only the changed model
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", "repro"], repo)
        key = f"models.{lstm_model}.train.lr"
        exp = run(["dvc", "exp", "run", "--temp", "-S", f"{key}=0.002", *targets], repo)
        assert ran_stages(exp.stdout) == {CHECK, f"train-{lstm_model}", f"evaluate-{lstm_model}"}, exp.stdout
        assert key in run(["dvc", "exp", "show", "--md"], repo).stdout

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"][raster_model]["train"]["lr"] *= 2  # not the default
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert set(group_status(repo, group)) == {CHECK, f"train-{raster_model}"}
    second = run(["dvc", "repro", *targets], repo)
    assert ran_stages(second.stdout) == {CHECK, f"train-{raster_model}", f"evaluate-{raster_model}"}
    assert group_status(repo, group) == {}

    # editing a file reruns exactly the stages that import it (dvc.yaml lists each stage's imports as deps)
    touch_source(repo, f"src/seqpipe/pipelines/{lstm_model}/evaluate.py")
    # (check-params imports every model's params classes, so it reruns too; its output never changes)
    assert set(group_status(repo, group)) == {CHECK, f"evaluate-{lstm_model}"}
    assert ran_stages(run(["dvc", "repro", *targets], repo).stdout) == {CHECK, f"evaluate-{lstm_model}"}
    touch_source(repo, f"src/seqpipe/pipelines/{raster_model}/preprocess.py")
    assert set(group_status(repo, group)) == {CHECK, f"preprocess-{raster_model}"}
    # the same arrays come out, so training (whose dep they are) does not rerun
    assert ran_stages(run(["dvc", "repro", *targets], repo).stdout) == {CHECK, f"preprocess-{raster_model}"}
    # the LSTM model's network file: its train and evaluate
    touch_source(repo, f"src/seqpipe/networks/{pipelines.get(lstm_model).network_module}.py")
    network_stages = {f"{s}-{lstm_model}" for s in ("train", "evaluate")}
    assert set(group_status(repo, group)) == network_stages
    assert ran_stages(run(["dvc", "repro", *targets], repo).stdout) == network_stages
    for rel in ("src/seqpipe/stages/predict.py", "src/seqpipe/stages/export.py"):  # imported by no stage
        touch_source(repo, rel)
    # nor the CLI around the stages (argument parser and help texts, logging set-up, the live-run registry)
    for rel in ("src/seqpipe/cli.py", "src/seqpipe/cli_parser.py", "src/seqpipe/live_runs.py"):
        touch_source(repo, rel)
    assert group_status(repo, group) == {}
    # what one model knows lives in its folder: its __init__ (SPEC, params and stats record, metric directions)
    # marks its own four stages, and the shared fit loop the train stages of every model
    touch_source(repo, f"src/seqpipe/pipelines/{raster_model}/__init__.py")
    assert set(group_status(repo, group)) == {CHECK, *(f"{s}-{raster_model}" for s in STAGES)}
    touch_source(repo, "src/seqpipe/fit.py")
    assert set(group_status(repo, group)) == {CHECK, *(f"{s}-{raster_model}" for s in STAGES), f"train-{lstm_model}"}

    if once:
        shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo).stdout)
        assert any(f"metrics/{lstm_model}.json" in json.dumps(v) for v in shown.values())
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
