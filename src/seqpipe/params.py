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
from collections.abc import Hashable, Iterable
from typing import Any, Literal, TypeVar

import yaml

from seqpipe.errors import SeqpipeError

DEFAULT_PARAMS = Path("params.yaml")
T = TypeVar("T")
AUTO = Literal["auto"]   # a key whose value the data can give: resolved and recorded by the stage that reads it


class ParamsError(SeqpipeError):
    """A missing, unknown or badly typed key in params.yaml."""


def check(condition: bool, key: str, message: str) -> None:
    """Raise a ParamsError naming `key` unless `condition` holds (used in __post_init__)."""
    if not condition:
        raise ParamsError(f"{key}: {message}")


MAX_THREADS = 256


@dataclass(frozen=True)
class TrainParams:
    """The shared trainer's settings; every model has a `train:` section of this shape."""

    epochs: int
    batch_size: int | AUTO     # auto: seqpipe.data.series.auto_batch_size of the train split
    lr: float
    weight_decay: float
    optimizer: Literal["adam", "adamw"]
    scheduler: Literal["plateau", "cosine", "onecycle", "none"]
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
        check(self.batch_size == "auto" or self.batch_size >= 1, "batch_size",
              f"must be >= 1 or auto, got {self.batch_size}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(0 < self.scheduler_factor < 1, "scheduler_factor", "must be in (0, 1)")
        check(self.scheduler_patience >= 0, "scheduler_patience", "must be >= 0")
        check(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 disables clipping)")
        check(self.early_stop_patience >= 1, "early_stop_patience", "must be >= 1")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        check(0 <= self.num_threads <= MAX_THREADS, "num_threads",
              f"must be in 0..{MAX_THREADS} (0 = every usable core), got {self.num_threads}")
        check(self.nproc_per_node >= 1, "nproc_per_node", f"must be >= 1 (1 = no DDP), got {self.nproc_per_node}")


# The `model:` sections of the networks (plain data; the torch modules live in seqpipe.networks).

@dataclass(frozen=True)
class LSTMParams:
    """The `model:` section of the LSTM-based models."""

    hidden_size: int
    num_layers: int
    dropout: float
    bidirectional: bool   # reads each window both ways; for offline (non-causal) tasks

    def __post_init__(self) -> None:
        check(self.hidden_size >= 1, "hidden_size", "must be >= 1")
        check(self.num_layers >= 1, "num_layers", "must be >= 1")
        check(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")


@dataclass(frozen=True)
class ForecastLSTMParams(LSTMParams):
    """The `model:` section of the LSTM next-step forecasters (bandwidth, crop_ndvi)."""

    # how the network reads each window (seqpipe.networks.lstm): global = as the training scaler left
    # it; difference = relative to its last step, forecasting the change; revin = per-window instance
    # normalisation, inverted on the output. The last two follow a level outside the training range.
    normalisation: Literal["global", "difference", "revin"]


@dataclass(frozen=True)
class ConvLSTMParams:
    """The `model:` section of ice_forecast."""

    hidden_channels: int
    kernel_size: int
    patch: int            # stride of the input embedding: the recurrent grid is `patch` x coarser

    def __post_init__(self) -> None:
        check(self.hidden_channels >= 1, "hidden_channels", "must be >= 1")
        check(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size", "must be odd and >= 1")
        check(self.patch >= 1, "patch", "must be >= 1")


# depth -> BasicBlocks per stage (He et al. 2016, table 1); the widths double at each stage.
DEPTHS: dict[int, list[int]] = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


@dataclass(frozen=True)
class ResNetParams:
    """The `model:` section of the ResNet-based models."""

    depth: int          # 10, 18 or 34 (BasicBlock layouts of ResNet-10/18/34)
    base_width: int     # channels of the first stage (64 in the original ResNet)
    dropout: float      # before the linear head

    def __post_init__(self) -> None:
        check(self.depth in DEPTHS, "depth", f"must be one of {', '.join(map(str, DEPTHS))}, got {self.depth}")
        check(self.base_width >= 4, "base_width", "must be >= 4")
        check(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")


@dataclass(frozen=True)
class SiameseParams:
    """The `model:` section of ice_change."""

    base_channels: int    # width of the first encoder level; doubles at each level
    depth: int            # encoder levels (each after the first halves the resolution)

    def __post_init__(self) -> None:
        check(self.base_channels >= 1, "base_channels", "must be >= 1")
        check(1 <= self.depth <= 5, "depth", "must be in 1..5")


SECTIONS = ("download", "preprocess", "model", "train", "evaluate")
TOP_LEVEL = ("seed", "device", "numerics", "models")
NUMERICS_MODES = ("portable", "native")  # see seqpipe.numerics


class Params:
    """params.yaml, checked at the top level when read; each stage then parses, strictly and with
    types, only the sections it uses (`section`), so a stage depends on exactly the keys it reads."""

    def __init__(self, raw: dict[str, Any], path: Path) -> None:
        self.raw, self.path = raw, path
        self.seed: int = convert(raw["seed"], int, "seed")
        check(0 <= self.seed < 2**32, "seed", f"must be in 0..2**32-1 (numpy and torch seeds), got {self.seed}")
        self.device: str = convert(raw["device"], str, "device")
        ok = self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        check(ok, "device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        self.numerics: str = convert(raw["numerics"], str, "numerics")
        check(self.numerics in NUMERICS_MODES, "numerics",
              f"must be {' or '.join(NUMERICS_MODES)}, got {self.numerics!r}")
        self._parsed: dict[tuple[str, str], Any] = {}

    @property
    def models(self) -> list[str]:
        return list(self.raw["models"])

    def section(self, model: str, section: str, cls: type[T]) -> T:
        """`models.<model>.<section>` as `cls` (a dataclass); errors name the file and the dotted key."""
        if model not in self.raw["models"]:
            raise ParamsError(f"{self.path}: models.{model}: missing section "
                              f"(params.yaml has {', '.join(self.raw['models'])})")
        key = (model, section)
        if key not in self._parsed:
            try:
                self._parsed[key] = convert(self.raw["models"][model][section], cls, f"models.{model}.{section}")
            except ParamsError as exc:
                raise ParamsError(f"{self.path}: {exc}") from None
        return self._parsed[key]

    def train(self, model: str) -> TrainParams:
        return self.section(model, "train", TrainParams)


def load_params(path: str | Path = DEFAULT_PARAMS, models: Iterable[str] | None = None,
                overrides: dict[str, Any] | None = None) -> Params:
    """Read params.yaml and check its shape: `seed`, `device`, `numerics`, and one section per model in `models`
    (the model folders), each with exactly the keys download, preprocess, model, train, evaluate.
    The sections' contents are checked when a stage reads them. `overrides` maps dotted keys to values."""
    path = Path(path)
    try:
        data = path.read_bytes()
        raw = read_yaml(data.decode("utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except IsADirectoryError:
        raise ParamsError(f"{path}: is a folder; --params takes a params.yaml file") from None
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParamsError(f"{path}: line {line}: not UTF-8 text") from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own limit (1000 levels)
            raise ParamsError(f"{path}: nested too deeply to be a params file") from None
        raise ParamsError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply to be a params file") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    try:
        check_shape(raw, None if models is None else list(models))
        return Params(raw, path)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: 10x faster
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently;
    DVC refuses the file, so seqpipe and DVC would otherwise disagree about the params)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicated key {key!r} on line {line} (first on line {seen[key]})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    """Parse YAML safely (plain data only), refusing duplicated keys."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_shape(raw: dict[str, Any], models: list[str] | None) -> None:
    """Top-level keys, the model names and each model's five section names (not their contents)."""
    reject_unknown(raw, TOP_LEVEL, "")
    for key in TOP_LEVEL:
        check(key in raw, key, "missing")
    check(isinstance(raw["models"], dict), "models", "must be a mapping")
    if models is not None:
        reject_unknown(raw["models"], models, "models")
        missing = [m for m in models if m not in raw["models"]]
        check(not missing, f"models.{missing[0] if missing else ''}", "missing section")
    for name, section in raw["models"].items():
        check(isinstance(section, dict), f"models.{name}", "must be a mapping")
        reject_unknown(section, SECTIONS, f"models.{name}")
        missing = [s for s in SECTIONS if s not in section]
        check(not missing, f"models.{name}.{missing[0] if missing else ''}", "missing section")


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
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return convert(value, inner[0], key)
        for alternative in inner:   # e.g. int | Literal["auto"]: the first that takes the value
            try:
                return convert(value, alternative, key)
            except ParamsError:
                pass
        raise ParamsError(f"{key}: expected {' or '.join(map(_describe_type, inner))}, got {value!r}")
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


def _describe_type(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(c) for c in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}.get(tp, str(tp))


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
