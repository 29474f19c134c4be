"""The Python API: `seqpipe.load(model_name_or_path)` returns a `Predictor` whose `predict` takes
arrays or DataFrames and returns numpy arrays, through the same code as `seqpipe predict`.

    import seqpipe
    bandwidth = seqpipe.load("bandwidth")          # models/bandwidth/model.pt of the current folder
    forecast = bandwidth.predict(frame)            # [n_windows, targets]
    print(bandwidth.inputs)                        # what predict takes and returns

Each model folder's `predict` module holds the array core (`predict_array`) and its description
(`INPUTS`); the CLI's file reading and writing wraps the same core.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from torch import nn

from seqpipe import checkpoint, layout, pipelines
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.params import DEFAULT_PARAMS, load_params
from seqpipe.spec import ModelSpec
from seqpipe.stages.predict import PredictInputError, checkpoint_stats

__all__ = ["Predictor", "load"]


class Predictor:
    """A trained model ready for in-memory prediction (build one with `seqpipe.load`).

    Attributes:
        model:    the model's name, e.g. "bandwidth" (the payload's; the folder under seqpipe.pipelines)
        path:     the model file it was loaded from
        network:  the torch module, in eval mode
        stats:    what preprocess learned from the training data (scalers, window, columns, classes...)
        inputs:   what `predict` takes and returns, in words
        options:  keyword defaults `predict` takes from params.yaml (ice_change: `threshold`); may be empty
        payload:  the whole model file (weights, network args, params, training history)
    """

    def __init__(self, spec: ModelSpec, path: Path, network: nn.Module, payload: dict[str, Any],
                 options: dict[str, Any]) -> None:
        self.spec, self.path, self.network, self.payload = spec, path, network, payload
        self._module: ModuleType = spec.stage("predict")
        self.options = options

    @property
    def model(self) -> str:
        return self.spec.name

    @property
    def stats(self) -> dict[str, Any]:
        return self.payload["stats"]

    @property
    def inputs(self) -> str:
        return str(self._module.INPUTS)

    @property
    def classes(self) -> list[str] | None:
        """Class names by index (classification models such as ice_type), else None."""
        classes = self.stats.get("classes")
        return list(classes) if classes is not None and self.spec.task == "classification" else None

    def predict(self, *inputs: Any, **options: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Run the model on in-memory inputs (see `.inputs`). A wrong shape, column or value raises
        PredictInputError (a SeqpipeError and a ValueError) naming the argument and what it expected."""
        given = {**self.options, **options}
        try:   # a missing, extra or misnamed argument: one line naming it, before anything is computed
            inspect.signature(self._module.predict_array).bind(self.network, self.payload, *inputs, **given)
        except TypeError as exc:
            raise PredictInputError(f"predict: {first_line(exc)}; {self.model} takes {self.inputs}") from None
        return self._module.predict_array(self.network, self.payload, *inputs, **given)

    def __repr__(self) -> str:
        return f"<seqpipe Predictor {self.model} from {self.path}>"


def load(model_name_or_path: str | Path, *, params: str | Path | None = DEFAULT_PARAMS,
         trust_unverified: bool = False) -> Predictor:
    """Load a trained model for `Predictor.predict`.

    `model_name_or_path`: a model name loads models/<name>/model.pt of the current folder (the
    repository root); a path loads that model file, whose payload names the model (a training
    checkpoint also needs the models/<name>/model.pt of its run, for the preprocessing stats).
    `params`: the params.yaml that options such as ice_change's threshold come from, when it exists
    (None: the built-in defaults). `trust_unverified`: accept a model file without its sha256 digest.
    """
    given = Path(model_name_or_path)
    name = str(model_name_or_path)
    if name in pipelines.names() and not given.is_file():
        path, expected = layout.model_file(name), name
        if not path.exists():
            raise SeqpipeError(f"{path}: not found; train {name} first (`dvc repro train-{name}`), "
                               "or run from the repository root, or pass the model file's path")
    else:
        path, expected = given, None
        if not path.exists():
            raise SeqpipeError(f"{path}: not found (neither a model file nor a model name; models: "
                               f"{', '.join(pipelines.names())})")
        if path.is_dir():
            raise SeqpipeError(f"{path}: is a folder; pass a model file (e.g. {path / 'model.pt'}) or "
                               "a model name")
    network, payload = checkpoint.load_model(path, expected, trust_unverified=trust_unverified)
    spec = pipelines.get(payload["model"])
    if not spec.has_stage("predict"):
        raise SeqpipeError(f"{path}: model {spec.name!r} has no predict module")
    if "stats" not in payload:
        payload = {**payload, "stats": checkpoint_stats(spec.name, path, payload)}
    return Predictor(spec, path, network, payload, _options(spec, params))


def _options(spec: ModelSpec, params: str | Path | None) -> dict[str, Any]:
    """The predict module's keyword defaults from params.yaml (`defaults(params)`), if it has any and
    the file exists (a missing default params.yaml leaves the built-in defaults)."""
    module = spec.stage("predict")
    if params is None or not hasattr(module, "defaults"):
        return {}
    if not Path(params).exists() and Path(params) == DEFAULT_PARAMS:
        return {}
    return dict(module.defaults(load_params(params)))
