"""seqpipe: a DVC-run, data-versioned training pipeline for time-series and raster models.

`seqpipe.load(model_name_or_path)` returns a Predictor for in-memory prediction (seqpipe.api); it
imports torch only when called, so `import seqpipe` stays light for the data commands.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "__version__"]


def load(model_name_or_path: str | Path, **options: Any) -> Any:   # a seqpipe.api.Predictor, imported on use
    """A trained model as a `seqpipe.api.Predictor`: `load("bandwidth").predict(frame)`. A model name
    loads models/<name>/model.pt of the current folder; a path loads that model file. Options:
    `params` (the params.yaml predict options come from), `trust_unverified` (see seqpipe.api.load)."""
    api = importlib.import_module("seqpipe.api")   # on use: torch loads only here
    return api.load(model_name_or_path, **options)
