"""Every registered model: params section, tiny test params, dvc.yaml entry, and a network that learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from seqpipe import registry
from seqpipe.models import NETWORKS, build_network, count_parameters
from seqpipe.preprocess import run_preprocess
from seqpipe.sources import run_download
from seqpipe.tasks import TASKS, build_task, step
from seqpipe.data.series import load_split_tensors
from seqpipe import layout
from seqpipe.params import Params
from seqpipe.quality import AIMS
from tests.conftest import REPO, TINY

MODELS = list(registry.MODELS)
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_dvc_yaml_lists_every_model_with_its_network_file() -> None:
    declared = DVC["vars"][0]["models"]
    assert set(declared) == set(MODELS)
    for name, spec in registry.MODELS.items():
        assert declared[name]["network"] == spec.network_module
        assert (REPO / "src/seqpipe/models" / f"{spec.network_module}.py").exists()
        assert spec.task in TASKS
        assert name in TINY, f"tests/tiny_params.yaml has no entry for {name}"
        assert name in AIMS, f"seqpipe.quality.AIMS has no quality aim for {name}"


@pytest.mark.parametrize("name", MODELS)
def test_network_forward_backward(name: str, tiny_params: Params) -> None:
    """Real tiny data through download + preprocess, then one training step: shapes, finite grads."""
    spec, cfg = registry.get(name), tiny_params.model(name)
    run_download(name, tiny_params)
    stats = run_preprocess(name, tiny_params)
    class_name, args = spec.network(cfg.model, stats)
    assert class_name in NETWORKS
    model = build_network(class_name, args)
    assert count_parameters(model) > 0
    batch = {k: v[:4] for k, v in load_split_tensors(layout.processed_dir(name), "train").items()}
    loss, output = step(model, build_task(spec.task, stats), batch)
    assert output.shape[0] == 4 and torch.isfinite(output).all()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_resume_fingerprint_covers_exactly_the_train_stage_code() -> None:
    """DVC reruns train when these files change; the checkpoint fingerprint must change with them,
    or a persisted checkpoint of the old code would be resumed as 'already complete'."""
    import importlib

    from seqpipe.train_stage import code_digests

    deps = [d for d in DVC["stages"]["train"]["do"]["deps"] if d.startswith("src/")]
    for name, spec in registry.MODELS.items():
        declared = {d.replace("${key}", name).replace("${item.network}", spec.network_module) for d in deps}
        hashed = {Path(importlib.import_module(m).__file__).resolve().relative_to(REPO).as_posix()
                  for m in code_digests(spec.network_module, name)}
        assert hashed == declared


def _data_imports(module: str) -> set[str]:
    """seqpipe.sources.* and seqpipe.data.* modules `module` imports, transitively (any nesting level)."""
    import ast

    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = REPO / "src" / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = path.with_suffix("") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            todo += [t for t in targets if t.startswith(("seqpipe.sources.", "seqpipe.data."))
                     and (REPO / "src" / (t.replace(".", "/") + ".py")).exists()]
    return seen


@pytest.mark.parametrize("stage, entry_points", [
    ("download", ["seqpipe.sources", "seqpipe.sources.local", "seqpipe.sources.{name}"]),
    ("preprocess", ["seqpipe.preprocess", "seqpipe.pipelines.{name}.preprocess"]),
    ("evaluate", ["seqpipe.evaluate", "seqpipe.pipelines.{name}.evaluate"]),
])
def test_data_stage_deps_cover_the_data_code_they_import(stage: str, entry_points: list[str]) -> None:
    """Shared readers/writers in seqpipe.data that a stage's code imports (at any depth) are its deps."""
    deps = set(DVC["stages"][stage]["do"]["deps"])
    for name in MODELS:
        needed = set().union(*(_data_imports(e.format(name=name)) for e in entry_points))
        declared = {d.replace("${key}", name) for d in deps}
        missing = {f"src/{m.replace('.', '/')}.py" for m in needed if m.startswith("seqpipe.data.")} - declared
        assert not missing, f"{stage}@{name} does not list {sorted(missing)} in dvc.yaml"


def test_default_network_sizes_match_the_original_scripts() -> None:
    from seqpipe.params import load_params

    params = load_params(REPO / "params.yaml")
    bandwidth = registry.get("bandwidth")
    _, args = bandwidth.network(params.model("bandwidth").model,
                                {"feature_columns": ["a"] * 9, "target_columns": ["t"] * 4})
    assert args["hidden_size"] == 128 and args["num_layers"] == 2 and args["output_size"] == 4
    assert not args["bidirectional"]
