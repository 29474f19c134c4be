"""One folder per model. The registry is this package's list of sub-packages, found without
importing them; `get(name)` imports one model's `__init__.py` (its SPEC) and nothing else."""

from __future__ import annotations

import importlib
import pkgutil

from seqpipe.errors import SeqpipeError
from seqpipe.spec import ModelSpec


def names() -> list[str]:
    """Every model folder, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg and not m.name.startswith("_"))


def get(name: str) -> ModelSpec:
    """The SPEC of model `name`; an unknown name is a one-line error listing the known ones."""
    known = names()
    if name not in known:
        raise SeqpipeError(f"unknown model {name!r} (known: {', '.join(known)})")
    return importlib.import_module(f"{__name__}.{name}").SPEC
