"""ModelSpec: what the generic stages need to know about one model folder (no torch, no data code)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypedDict


class ArrayRecord(TypedDict):
    """One array of a processed data folder, as stats.json records it (seqpipe.data.series.save_splits)."""

    dtype: str
    sha256: str
    shape: list[int]


class OptionalStats(TypedDict, total=False):
    """The optional key of every stats.json: a windowed model's cuts (seqpipe.data.windows), key -> Cut."""

    windows: dict[str, Any]


class Stats(OptionalStats):
    """stats.json, the record preprocess writes beside the arrays and every later stage reads: what every
    model's holds (`arrays`, from the model's preprocess; `provenance`, added by the preprocess stage from
    the download's manifest). Each model's folder subclasses it with its own keys (its SPEC's
    `stats_record`), and the preprocess stage refuses a record with a key missing or undeclared."""

    arrays: dict[str, ArrayRecord]
    provenance: dict[str, Any]


class WindowStats(Stats):
    """The stats.json keys of a next-step forecaster over windows of standardised feature columns."""

    feature_columns: list[str]
    target_columns: list[str]
    window: int
    scaler: dict[str, list[float]]             # Standardizer.to_dict of the training rows
    train_range: dict[str, list[float]]        # column: [min, max] of the training rows (RangeCheck)
    range_margin: float
    out_of_range: dict[str, dict[str, float]]  # column: {split: share of its rows beyond the margin}


@dataclass(frozen=True)
class IODescription:
    """What a model's network reads and returns, as `seqpipe export` writes it beside the ONNX graph: input
    feature and output target names in order, the window of rows (None where the input is not one), the
    scaler that standardises raw input (None where the network reads raw values), a sentence each on the
    input `x` and output `y`, and the unit of each named column where it is known. Each model's predict
    module makes one from its stats (`describe_io`)."""

    features: list[str]
    targets: list[str]
    window: int | None
    scaler: dict[str, Any] | None
    x: str
    y: str
    units: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """One model: `package` is its folder under seqpipe.pipelines, whose stage modules are
    `download` (DownloadParams, SOURCES), `preprocess` (PreprocessParams, preprocess), optionally
    `train` (augmentation(stats): a map of training batches, applied by the shared trainer),
    `evaluate` (EvaluateParams, evaluate, quality_aim) and optionally `predict` (predict_array and
    INPUTS: the array core `seqpipe.load` calls; predict: the files of `seqpipe predict`; describe_io:
    the IODescription `seqpipe export` writes)."""

    package: str                      # "seqpipe.pipelines.<model>" (pass __name__)
    summary: str
    task: str                         # key of seqpipe.tasks.TASKS
    network_module: str               # file under seqpipe/networks/ that the train stage builds from
    model_params: type[Any]           # the `model:` section's dataclass
    # (model params, stats) -> (class name, constructor args)
    network: Callable[[Any, Any], tuple[str, dict]]
    stats_record: type[Stats]         # the model's stats.json keys: a subclass of Stats in its folder
    predict_inputs: tuple[str, ...] = ("input",)       # the path options `seqpipe predict MODEL` takes
    predict_help: str = ""            # what those inputs must hold (shown by `seqpipe predict MODEL --help`)
    predict_example: str = ""         # a command that runs on a fresh clone after `make repro`
    # which way the model's own metrics are better (name: +1 higher, -1 lower), beside the common ones
    # of seqpipe.metrics; a name also matches itself plus a suffix after "_" (<name>_lead_3)
    metric_directions: Mapping[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.package.rsplit(".", 1)[-1]

    def stage(self, module: str) -> ModuleType:
        """Import and return this model's `module` (download, preprocess, evaluate or predict)."""
        return importlib.import_module(f"{self.package}.{module}")

    def has_stage(self, module: str) -> bool:
        return importlib.util.find_spec(f"{self.package}.{module}") is not None
