"""ModelSpec: what the generic stages need to know about one model folder (no torch, no data code)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """One model: `package` is its folder under seqpipe.pipelines, whose stage modules are
    `download` (DownloadParams, SOURCES), `preprocess` (PreprocessParams, preprocess),
    `evaluate` (EvaluateParams, evaluate, quality_aim) and optionally `predict` (predict_array and
    INPUTS: the array core `seqpipe.load` calls; predict: the files of `seqpipe predict`)."""

    package: str                      # e.g. "seqpipe.pipelines.bandwidth" (pass __name__)
    summary: str
    task: str                         # key of seqpipe.tasks.TASKS
    network_module: str               # file under seqpipe/networks/ that the train stage builds from
    model_params: type[Any]           # the `model:` section's dataclass
    # (model params, stats) -> (class name, constructor args)
    network: Callable[[Any, dict], tuple[str, dict]]
    predict_inputs: tuple[str, ...] = ("input",)       # the path options `seqpipe predict MODEL` takes
    predict_help: str = ""            # what those inputs must hold (shown by `seqpipe predict MODEL --help`)
    predict_example: str = ""         # a command that runs on a fresh clone after `make repro`

    @property
    def name(self) -> str:
        return self.package.rsplit(".", 1)[-1]

    def stage(self, module: str) -> ModuleType:
        """Import and return this model's `module` (download, preprocess, evaluate or predict)."""
        return importlib.import_module(f"{self.package}.{module}")

    def has_stage(self, module: str) -> bool:
        return importlib.util.find_spec(f"{self.package}.{module}") is not None
