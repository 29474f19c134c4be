"""The only reader of params.yaml: typed, strict dataclasses.

Every key must be present (params.yaml holds every hyperparameter, so DVC sees every change) and
no unknown key is allowed. Errors name the file and the dotted key, before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from seqpipe import SeqpipeError

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(SeqpipeError):
    """A missing, unknown or badly typed key in params.yaml."""


def check(condition: bool, key: str, message: str) -> None:
    """Raise a ParamsError naming `key` unless `condition` holds (used in __post_init__)."""
    if not condition:
        raise ParamsError(f"{key}: {message}")


@dataclass(frozen=True)
class TrainParams:
    """The shared trainer's settings; every model has a `train:` section of this shape."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: Literal["adam", "adamw"]
    scheduler: Literal["plateau", "cosine", "none"]
    scheduler_factor: float
    scheduler_patience: int
    grad_clip: float
    early_stop_patience: int
    keep_checkpoints: int
    amp: bool
    num_threads: int
    nproc_per_node: int
    require_real_data: bool

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(0 < self.scheduler_factor < 1, "scheduler_factor", "must be in (0, 1)")
        check(self.scheduler_patience >= 0, "scheduler_patience", "must be >= 0")
        check(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 disables clipping)")
        check(self.early_stop_patience >= 1, "early_stop_patience", "must be >= 1")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        check(self.num_threads >= 0, "num_threads", "must be >= 0 (0 = all cores)")
        check(self.nproc_per_node >= 1, "nproc_per_node", f"must be >= 1 (1 = no DDP), got {self.nproc_per_node}")


@dataclass(frozen=True)
class ModelConfig:
    """One `models.<name>` section; the section classes come from the model's registry entry."""

    download: Any
    preprocess: Any
    model: Any
    train: TrainParams
    evaluate: Any


@dataclass(frozen=True)
class Params:
    seed: int
    device: str
    models: dict[str, ModelConfig]

    def __post_init__(self) -> None:
        ok = self.device in ("auto", "cpu", "cuda") or (
            self.device.startswith("cuda:") and self.device[5:].isdigit()
        )
        check(ok, "device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def model(self, name: str) -> ModelConfig:
        if name not in self.models:
            raise ParamsError(f"unknown model {name!r} (known: {', '.join(sorted(self.models))})")
        return self.models[name]


def load_params(path: str | Path = DEFAULT_PARAMS, overrides: dict[str, Any] | None = None) -> Params:
    """Read and validate params.yaml. `overrides` maps dotted keys to values (used by tests)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    try:
        return parse_params(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def parse_params(raw: dict[str, Any]) -> Params:
    from seqpipe.registry import MODELS  # late import: the registry imports the model modules

    models_raw = raw.get("models")
    check(isinstance(models_raw, dict), "models", "missing or not a mapping")
    unknown = sorted(set(models_raw) - set(MODELS))
    check(not unknown, f"models.{unknown[0] if unknown else ''}",
          f"unknown model (registered: {', '.join(MODELS)})")
    models = {}
    for name, spec in MODELS.items():
        key = f"models.{name}"
        check(name in models_raw, key, "missing section")
        section_types = {"download": spec.download_params, "preprocess": spec.preprocess_params,
                         "model": spec.model_params, "train": TrainParams,
                         "evaluate": spec.evaluate_params}
        section = models_raw[name]
        check(isinstance(section, dict), key, "must be a mapping")
        reject_unknown(section, section_types, key)
        values = {}
        for field_name, cls in section_types.items():
            check(field_name in section, f"{key}.{field_name}", "missing section")
            values[field_name] = convert(section[field_name], cls, f"{key}.{field_name}")
        models[name] = ModelConfig(**values)
    top = {k: v for k, v in raw.items() if k != "models"}
    reject_unknown(top, {"seed": int, "device": str}, "")
    for key in ("seed", "device"):
        check(key in top, key, "missing")
    return Params(seed=convert(top["seed"], int, "seed"), device=convert(top["device"], str, "device"),
                  models=models)


def reject_unknown(data: dict[str, Any], allowed: Any, prefix: str) -> None:
    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), list(allowed), n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(allowed)})"
            raise ParamsError(f"{prefix + '.' if prefix else ''}{key}: unknown key{suffix}")


def convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against type `tp` (dataclass, Literal, list[...], X | None, scalars)."""
    if is_dataclass(tp):
        check(isinstance(value, dict), key, f"expected a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = [f.name for f in fields(tp)]
        reject_unknown(value, names, key)
        missing = [n for n in names if n not in value]
        check(not missing, f"{key}.{missing[0] if missing else ''}", "missing")
        kwargs = {n: convert(value[n], hints[n], f"{key}.{n}") for n in names}
        try:
            return tp(**kwargs)
        except ParamsError as exc:
            raise ParamsError(f"{key}.{exc}") from None
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        check(value in choices, key, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(value, inner, key)
    if origin is list:
        (inner,) = typing.get_args(tp)
        check(isinstance(value, list), key, f"expected a list, got {type(value).__name__}")
        return [convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        check(ok, key, f"expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        check(ok, key, f"expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp in (str, bool):
        check(isinstance(value, tp), key, f"expected {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"unsupported params type {tp!r} at {key}")


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def as_dict(obj: Any) -> Any:
    """A params dataclass as plain data (for checkpoints, model cards, fingerprints)."""
    if is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {k: as_dict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [as_dict(v) for v in obj]
    return obj


def fingerprint(*parts: Any) -> str:
    """A short stable hash of plain data; used to match checkpoints with params and data."""
    blob = json.dumps([as_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def replace(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, **changes)
