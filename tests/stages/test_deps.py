"""dvc.yaml's deps are exactly what each stage imports, and a `local` source's files are deps too."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqpipe import dvc_stages, pipelines
from seqpipe.stages import entry
from tests.conftest import REPO, run, run_env, tiny_overrides, write_params

STAGES = dvc_stages.STAGES
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
RECORD = ("import json, sys\nfrom seqpipe.cli import main\ncode = main(sys.argv[1:])\n"
          "files = [m.__file__ for n, m in list(sys.modules.items()) if n.split('.')[0] == 'seqpipe']\n"
          "print(json.dumps(sorted(f for f in files if f)))\nsys.exit(code)\n")


ORCHESTRATION_FILES = {dvc_stages.module_file(m).relative_to(REPO).as_posix() for m in dvc_stages.ORCHESTRATION}


def declared_src_deps(stage: str, model: str) -> set[str]:
    return {d for d in DVC[f"{stage}-{model}"]["deps"] if d.startswith("src/")}


def loaded_by(proc: subprocess.CompletedProcess) -> set[str]:
    """The project files a RECORD run had loaded, less the CLI's own (dvc_stages.ORCHESTRATION), which
    every run loads and no stage imports."""
    files = {Path(f).resolve().relative_to(REPO).as_posix() for f in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert ORCHESTRATION_FILES <= files, "the CLI's modules are loaded by every run through it"
    return files - ORCHESTRATION_FILES


def test_dvc_yaml_is_generated_from_the_model_folders() -> None:
    """`seqpipe dvc-yaml --check`: one stage per model and stage, deps from the import closure."""
    assert not dvc_stages.write(REPO / "dvc.yaml", check=True)
    assert set(DVC) == {"check-params"} | {f"{s}-{m}" for s in STAGES for m in pipelines.names()}


@pytest.mark.parametrize("model", pipelines.names())
def test_each_stage_loads_exactly_its_declared_deps(model: str, tmp_path: Path) -> None:
    """Run the four stages in fresh interpreters: the project files each had loaded when it finished
    are exactly the src/ deps dvc.yaml lists for it (nothing missing, nothing extra)."""
    write_params(tmp_path / "params.yaml", tiny_overrides(model))
    for stage in STAGES:
        proc = subprocess.run([sys.executable, "-c", RECORD, stage, model], cwd=tmp_path, env=run_env(REPO),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        loaded = loaded_by(proc)
        declared = declared_src_deps(stage, model)
        assert loaded == declared, (f"{stage}-{model}: imported but not a dep: {sorted(loaded - declared)}; "
                                    f"a dep but not imported: {sorted(declared - loaded)}")


def test_editing_a_local_source_file_reruns_the_chain(repo_copy: Path) -> None:
    """bandwidth from the user's CSV: editing that CSV reruns download, preprocess, train and evaluate."""
    run(["seqpipe", "download", "bandwidth"], repo_copy)          # a real-format CSV to start from
    csv = repo_copy / "data/local/bandwidth/bandwidth.csv"
    csv.write_bytes((repo_copy / "data/raw/bandwidth/bandwidth.csv").read_bytes())
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    overrides = {**tiny_overrides("bandwidth"), "models.bandwidth.download.source": "local"}
    write_params(repo_copy / "params.yaml", overrides)
    assert yaml.safe_load((repo_copy / "params.yaml").read_text())["models"]["bandwidth"]["download"]["local"] == \
        params["models"]["bandwidth"]["download"]["local"]
    run(["dvc", "repro", "evaluate-bandwidth"], repo_copy)
    assert "download-bandwidth" not in json.loads(run(["dvc", "status", "--json"], repo_copy).stdout)
    lines = csv.read_text().splitlines()
    fields = lines[-1].split(",")
    fields[1] = str(float(fields[1]) + 1.0)                        # one throughput value changes
    csv.write_text("\n".join(lines[:-1] + [",".join(fields)]) + "\n")
    status = json.loads(run(["dvc", "status", "--json"], repo_copy).stdout)
    assert "download-bandwidth" in status, status
    rerun = run(["dvc", "repro", "evaluate-bandwidth"], repo_copy).stdout
    ran = {line.split("'")[1] for line in rerun.splitlines() if line.startswith("Running stage")}
    assert ran == {f"{s}-bandwidth" for s in STAGES}, rerun


def test_check_params_loads_exactly_its_declared_deps(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", tiny_overrides())
    proc = subprocess.run([sys.executable, "-c", RECORD, "check-params"], cwd=tmp_path, env=run_env(REPO),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = loaded_by(proc)
    declared = {d for d in DVC["check-params"]["deps"] if d.startswith("src/")}
    assert loaded == declared, (f"imported but not a dep: {sorted(loaded - declared)}; "
                                f"a dep but not imported: {sorted(declared - loaded)}")
    assert all("data/params.checked" in stage["deps"] for name, stage in DVC.items() if name != "check-params")


def test_the_cli_around_a_stage_is_no_dep_and_hands_it_nothing_that_decides_its_outputs() -> None:
    """Argument parsing, help, completion, logging set-up and the live-run registry are in no stage's deps
    (editing a help text reruns nothing), no stage's code can reach them (the import closure), and what
    the CLI hands a stage is the command, the spec, the parsed params, the resume flags of its own `cmd`
    and the number of other trainings running (the environment, as the core count is)."""
    for name, stage in DVC.items():
        assert not ORCHESTRATION_FILES & set(stage["deps"]), name
    for model in pipelines.names():
        for stage in STAGES:
            assert not set(dvc_stages.ORCHESTRATION) & dvc_stages.stage_modules(stage, pipelines.get(model))
    assert list(inspect.signature(entry.configure_numerics).parameters) == ["command", "spec", "params", "others"]
    assert list(inspect.signature(entry.run_stage).parameters) == ["command", "spec", "params", "resume",
                                                                    "validate_only"]
