"""Every model folder: the conventional stage modules, a params.yaml section they parse, its network file,
and a network that takes a training step on real tiny data."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import fields, is_dataclass

import pytest
import torch

from seqpipe import layout, pipelines
from seqpipe.metrics import direction
from seqpipe.networks import build_network, count_parameters
from seqpipe.params import Params, load_params
from seqpipe.stages import download, preprocess
from seqpipe.stages.splits import load_split_tensors
from seqpipe.tasks import TASKS, build_task, step
from tests.conftest import REPO, TINY

MODELS = pipelines.names()
CONVENTIONS = {"download": ("DownloadParams", "SOURCES"), "preprocess": ("PreprocessParams", "preprocess"),
               "evaluate": ("EvaluateParams", "evaluate", "quality_aim", "HEADLINE")}
CLASSES = {"download": "DownloadParams", "preprocess": "PreprocessParams", "evaluate": "EvaluateParams"}


def test_there_are_models() -> None:
    assert {"bandwidth", "crop_ndvi", "freq_filter", "ice_change", "ice_forecast", "ice_type"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_model_folder_follows_the_conventions(name: str) -> None:
    spec = pipelines.get(name)
    assert spec.name == name and spec.package == f"seqpipe.pipelines.{name}"
    assert spec.task in TASKS and spec.summary
    assert (REPO / "src/seqpipe/networks" / f"{spec.network_module}.py").exists()
    for stage, members in CONVENTIONS.items():
        assert spec.has_stage(stage), f"{spec.package}.{stage} is missing"
        module = spec.stage(stage)
        missing = [m for m in members if not hasattr(module, m)]
        assert not missing, f"{module.__name__} lacks {missing}"
        assert is_dataclass(getattr(module, CLASSES[stage]))
    evaluate = spec.stage("evaluate")
    assert all(callable(f) for f in (spec.stage("preprocess").preprocess, evaluate.evaluate, evaluate.quality_aim))
    # the headline (metrics/<model>.json): 1-3 metrics, each with a direction the PR report can judge
    assert isinstance(evaluate.HEADLINE, tuple) and 1 <= len(evaluate.HEADLINE) <= 3, evaluate.HEADLINE
    assert all(direction(k, spec.metric_directions) in (1, -1) for k in evaluate.HEADLINE), evaluate.HEADLINE
    if spec.has_stage("predict"):
        assert callable(spec.stage("predict").predict)

    # params.yaml has the model's section, and each stage's part parses with the model's own dataclasses
    params = load_params(REPO / "params.yaml", MODELS)
    assert name in params.models
    parsed = {stage: params.section(name, stage, getattr(spec.stage(stage), cls)) for stage, cls in CLASSES.items()}
    params.section(name, "model", spec.model_params)
    params.train(name)

    # the source kinds that `download.source` accepts are exactly the ones SOURCES implements
    module = spec.stage("download")
    kinds = typing.get_args(typing.get_type_hints(module.DownloadParams)["source"])
    assert set(kinds) == set(module.SOURCES), f"{name}: download.source allows {kinds}, SOURCES {list(module.SOURCES)}"
    assert parsed["download"].source in module.SOURCES
    # LOCAL_PATHS (deps of the download stage) name string keys of the download section
    for dotted in getattr(module, "LOCAL_PATHS", ()):
        node = parsed["download"]
        for part in dotted.split("."):
            assert is_dataclass(node) and part in {f.name for f in fields(node)}, f"{name}: download.{dotted}"
            node = getattr(node, part)
        assert isinstance(node, str), f"{name}: download.{dotted} is not a path string"


def test_tiny_params_entries_name_models_and_set_only_their_keys() -> None:
    """tests/tiny_params.yaml entries are optional, but an entry must belong to a model folder."""
    for name, overrides in TINY.items():
        assert name in MODELS, f"tests/tiny_params.yaml: {name!r} is not a model folder"
        assert all(key.startswith(f"models.{name}.") for key in overrides), name


@pytest.mark.parametrize("name", MODELS)
def test_network_forward_backward(name: str, tiny_params: Params) -> None:
    """Real tiny data through download + preprocess, then one training step: shapes, finite grads."""
    spec = pipelines.get(name)
    download.run(spec, tiny_params)
    stats = preprocess.run(spec, tiny_params)
    class_name, args = spec.network(tiny_params.section(name, "model", spec.model_params), stats)
    model = build_network(spec.network_module, class_name, args)
    assert count_parameters(model) > 0
    batch = {k: v[:4] for k, v in load_split_tensors(layout.processed_dir(name), "train").items()}
    loss, output = step(model, build_task(spec.task, stats), batch)
    assert output.shape[0] == 4 and torch.isfinite(output).all()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_bandwidth_network_is_causal_and_the_original_size_is_two_params_away() -> None:
    """The default is smaller than the original script's 2x128 LSTM (it meets the aim at a fraction of
    the work); `-S model.hidden_size=128 -S model.num_layers=2` builds the original's network."""
    params = load_params(REPO / "params.yaml")
    bandwidth = pipelines.get("bandwidth")
    stats = {"feature_columns": ["a"] * 9, "target_columns": ["t"] * 4, "target_index": [0, 1, 2, 3], "window": 20}
    default = params.section("bandwidth", "model", bandwidth.model_params)
    _, args = bandwidth.network(default, stats)
    assert len(args["target_index"]) == 4 and "bidirectional" not in args   # a forecaster reads the past only
    _, original = bandwidth.network(dataclasses.replace(default, hidden_size=128, num_layers=2), stats)
    assert original["hidden_size"] == 128 and original["num_layers"] == 2
