"""The "Adding a model" recipe of docs/layout.md, followed to the letter on a copy of the repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.conftest import REPO, run

BLOCK = re.compile(r"```(?:python|yaml)\n# (\S+)[^\n]*\n(.*?)```", re.S)


def recipe() -> list[tuple[str, str]]:
    """(path, text) of each code block of the "Adding a model" section of docs/layout.md."""
    page = (REPO / "docs/layout.md").read_text(encoding="utf-8")
    section = page[page.index("\n## Adding a model\n"):]
    end = section.find("\n## ", 1)      # the next section (the code blocks' `# path` lines are no heading)
    return BLOCK.findall(section if end < 0 else section[:end])


def test_a_seventh_model_from_the_docs_recipe(repo_copy: Path) -> None:
    blocks = recipe()
    assert [path for path, _ in blocks] == [f"src/seqpipe/pipelines/toy/{f}.py"
                                            for f in ("__init__", "download", "preprocess", "evaluate")] + ["params.yaml"]
    for path, text in blocks:
        target = repo_copy / path
        if target.name == "params.yaml":       # the section goes under `models:`, the last top-level key
            target.write_text(target.read_text().rstrip("\n") + "\n" + text)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    run(["seqpipe", "dvc-yaml"], repo_copy)
    assert "toy" in run(["seqpipe", "list"], repo_copy).stdout.split()
    repro = run(["dvc", "repro", "evaluate-toy"], repo_copy).stdout
    ran = {line.split("'")[1] for line in repro.splitlines() if line.startswith("Running stage")}
    assert ran == {"check-params", "download-toy", "preprocess-toy", "train-toy", "evaluate-toy"}, repro
    metrics = json.loads((repo_copy / "metrics/toy.json").read_text())
    assert metrics["test"]["rmse"] < metrics["baselines"]["persistence"]["rmse"]

    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "src", "params.yaml",
                              "dvc.yaml", "tests"], cwd=repo_copy, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    touched = sorted(line[3:] for line in changed if "__pycache__" not in line)
    assert touched == ["dvc.yaml", "params.yaml"] + [f"src/seqpipe/pipelines/toy/{f}.py" for f in
                                                      ("__init__", "download", "evaluate", "preprocess")]
    places = 1 + sum("toy" in text for _, text in blocks)   # the folder, then each file that spells it
    assert places <= 3, f"the model's name is written in {places} places"
