"""MODELS: every model's name -> spec. Adding a model adds one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """Everything the generic stages need to know about one model."""

    name: str
    summary: str
    task: str                        # key of seqpipe.tasks.TASKS
    network_module: str              # file under src/seqpipe/models/ (dvc.yaml dep of train)
    download_params: type
    preprocess_params: type
    model_params: type
    evaluate_params: type
    sources: dict[str, Callable[[Any, int, Path], dict]]       # kind -> (params, seed, out_dir)
    preprocess: Callable[[Any, int, Path, Path], dict]        # (params, seed, raw, out) -> stats
    network: Callable[[Any, dict], tuple[str, dict]]          # (model params, stats) -> class, args
    evaluate: Callable[[Any], dict]                           # EvalContext -> metrics
    predict: Callable[..., Path] | None = None                # (network, payload, cli args) -> output


def _specs() -> dict[str, ModelSpec]:
    from seqpipe.pipelines.bandwidth import SPEC as bandwidth
    from seqpipe.pipelines.crop_ndvi import SPEC as crop_ndvi
    from seqpipe.pipelines.freq_filter import SPEC as freq_filter
    from seqpipe.pipelines.ice_change import SPEC as ice_change
    from seqpipe.pipelines.ice_forecast import SPEC as ice_forecast
    from seqpipe.pipelines.ice_type import SPEC as ice_type

    return {spec.name: spec for spec in (freq_filter, bandwidth, ice_type, ice_forecast, ice_change, crop_ndvi)}


MODELS: dict[str, ModelSpec] = _specs()


def get(name: str) -> ModelSpec:
    from seqpipe import SeqpipeError

    if name not in MODELS:
        raise SeqpipeError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name]
