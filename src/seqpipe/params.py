"""The only reader of params.yaml: typed, strict dataclasses.

Every key must be present (params.yaml holds every hyperparameter, so DVC sees every change) and
no unknown key is allowed. Errors name the file and the dotted key, before any work starts.

The file is parsed as DVC parses it (ruamel.yaml's safe loader, YAML 1.2), so the values DVC records
(`dvc params diff`, `dvc exp show`) are the values that run. Every number is finite and every numeric
field declares its range once, as `Annotated[int, Range(1, 10_000)]`; `convert` checks it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import math
import os
import re
import stat
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast, dataclass_transform

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.constructor import DuplicateKeyError

from seqpipe.errors import SeqpipeError, first_line

DEFAULT_PARAMS = Path("params.yaml")
T = TypeVar("T")
# a key whose value the data can give: resolved and recorded by the stage that reads it
AUTO = Literal["auto"]


class ParamsError(SeqpipeError):
    """A missing, unknown or badly typed key in params.yaml."""


def check(condition: bool, key: str, message: str) -> None:
    """Raise a ParamsError naming `key` unless `condition` holds (used in __post_init__)."""
    if not condition:
        raise ParamsError(f"{key}: {message}")


class _WrongType(ParamsError):
    """A value of the wrong type (a union tries its next alternative); a range error is final."""


@dataclass(frozen=True)
class Range:
    """The bounds of a numeric param (typing.Annotated metadata, checked by `convert`): `low <= value
    <= high`, strict on an `open` side; `note` says what the number means. Every int and float field of a
    params section has one."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def check(self, value: float, key: str) -> None:
        if value < self.low or (self.low_open and value == self.low):
            bound = f"{'>' if self.low_open else '>='} {_number(self.low)}"
        elif value > self.high or (self.high_open and value == self.high):
            bound = f"in {self.describe(integer=isinstance(value, int))}"
        else:
            return
        raise ParamsError(f"{key}: must be {bound}{f' ({self.note})' if self.note else ''}, got "
                          f"{_number(value)}")

    def describe(self, integer: bool) -> str:
        """1..32 for an integer param (both ends in), else interval notation: (0, 10]."""
        low, high = _number(self.low), _number(self.high)
        if integer and not (self.low_open or self.high_open):
            return f"{low}..{high}"
        return f"{'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class Length:
    """How many items a list param holds (typing.Annotated metadata, checked by `convert`)."""

    low: int
    high: int

    def check(self, value: list, key: str) -> None:
        if not self.low <= len(value) <= self.high:
            raise ParamsError(f"{key}: must hold {self.low} to {self.high} items, got {len(value)}")


def check_size(key: str, size: float, limit: float, what: str) -> None:
    """Refuse a product of params (rows x features, layers x width^2 ...) beyond what a run can hold or
    finish, before any work starts: `what` names the quantity, e.g. "values in the synthetic series"."""
    check(size <= limit, key, f"{what}: {size:.3g}, over the limit of {limit:.3g}; lower it")


FIRST_YEAR, LAST_YEAR = 1900, 2200   # the dates a params file may name (pandas' timestamps end in 2262)


def check_date(key: str, value: str, time: bool = False) -> dt.datetime:
    """`value`, an ISO 8601 date (with `time`: or date-time), within FIRST_YEAR..LAST_YEAR; else a ParamsError
    naming `key`."""
    try:
        when = dt.datetime.fromisoformat(value) if time else dt.datetime.combine(dt.date.fromisoformat(value),
                                                                                  dt.time())
    except ValueError:
        expected = ("an ISO date or date-time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)" if time
                    else "a YYYY-MM-DD date")
        raise ParamsError(f"{key}: not {expected}: {value!r}") from None
    check(FIRST_YEAR <= when.year <= LAST_YEAR, key, f"must lie in the years {FIRST_YEAR}..{LAST_YEAR}, "
          f"got {value!r}")
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when   # comparable


def check_end(key: str, start: dt.datetime, span: dt.timedelta | float, what: str) -> None:
    """Refuse a run of dates from `start` lasting `span` (a timedelta or days) that ends after LAST_YEAR."""
    try:
        end_year = (start + (span if isinstance(span, dt.timedelta) else dt.timedelta(days=span))).year
    except OverflowError:
        end_year = dt.MAXYEAR + 1
    check(end_year <= LAST_YEAR, key, f"{what} would end in the year {end_year}, after {LAST_YEAR}; lower it")


def _number(x: float) -> str:
    """A bound or value for a message: ints as written up to 16 digits, else in the shortest float form."""
    if isinstance(x, int) and abs(x) >= 10**16:
        return (f"{x:.3e}" if abs(x) < 10**308
                else f"an integer of about {int(x.bit_length() * 0.30103)} digits")
    if isinstance(x, int):
        return str(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


@dataclass_transform(frozen_default=True)
def params_section(cls: type[T] | None = None, /, *, kw_only: bool = False) -> Any:
    """@dataclass(frozen=True) for a params section: constructing one (from params.yaml through `convert`, or
    in code) first checks every field against its type hint (Literal choices, finite floats, Range, Length:
    the rules of `convert`), then runs the class's own __post_init__ (relations between fields)."""
    if cls is None:
        return lambda c: params_section(c, kw_only=kw_only)
    own = getattr(cls, "__post_init__", None)
    hints: dict[str, Any] = {}

    def __post_init__(self: Any) -> None:
        if not hints:   # resolved on first use: the hints may name classes defined after this one
            hints.update(typing.get_type_hints(cls, include_extras=True))
        for f in fields(cast(Any, cls)):   # a dataclass by the time an instance exists
            convert(getattr(self, f.name), hints[f.name], f.name)
        if own is not None:
            own(self)

    cls.__post_init__ = __post_init__  # type: ignore[attr-defined]
    cls.__params_section__ = True      # type: ignore[attr-defined]
    return dataclass(frozen=True, kw_only=kw_only)(cls)


MAX_THREADS = 256
MAX_PARAMETERS = 1_000_000_000   # a network's parameters (seqpipe.stages.train counts them exactly)
# Ranges several sections share.
Dropout = Annotated[float, Range(0, 1, high_open=True)]
BatchSize = Annotated[int, Range(1, 2**20)]
# val or test share of the data
SplitFraction = Annotated[float, Range(0, 0.5, low_open=True, high_open=True)]
Penalty = Annotated[float, Range(0, 1e6)]   # a ridge or L2 penalty (standardised units)
Width = Annotated[int, Range(1, 16_384)]    # units of a layer (an LSTM's hidden size, a dense head's)
Layers = Annotated[int, Range(1, 32)]       # stacked recurrent layers


@params_section
class TrainParams:
    """The shared trainer's settings; every model has a `train:` section of this shape."""

    epochs: Annotated[int, Range(1, 100_000)]
    batch_size: BatchSize | AUTO     # auto: seqpipe.data.series.auto_batch_size of the train split
    lr: Annotated[float, Range(0, 10, low_open=True)]
    weight_decay: Annotated[float, Range(0, 1)]
    optimizer: Literal["adam", "adamw"]
    scheduler: Literal["plateau", "cosine", "onecycle", "none"]
    scheduler_factor: Annotated[float, Range(0, 1, low_open=True, high_open=True)]
    scheduler_patience: Annotated[int, Range(0, 10_000)]
    grad_clip: Annotated[float, Range(0, 1e6)]               # 0 disables clipping
    early_stop_patience: Annotated[int, Range(1, 100_000)]
    keep_checkpoints: Annotated[int, Range(1, 1000)]
    amp: bool
    num_threads: Annotated[int, Range(0, MAX_THREADS, note="0 = every usable core")]
    nproc_per_node: Annotated[int, Range(1, 1024, note="1 = no DDP")]
    require_real_data: bool


# Each model's `model:` section is a params class in its folder (seqpipe.pipelines.<model>); the torch
# modules live in seqpipe.networks.

def check_lstm_size(p: Any) -> None:
    """Refuse an LSTM whose recurrent weights alone (4 gates x hidden^2 per layer and direction, a lower
    bound of its parameters) exceed MAX_PARAMETERS, before anything builds it."""
    directions = 2 if getattr(p, "bidirectional", False) else 1
    check_size("hidden_size", 4 * p.hidden_size**2 * p.num_layers * directions, MAX_PARAMETERS,
               "the LSTM's recurrent weights (4 x hidden_size^2 x num_layers x directions)")


SECTIONS = ("download", "preprocess", "model", "train", "evaluate")
TOP_LEVEL = ("seed", "device", "numerics", "models")
NUMERICS_MODES = ("portable", "native")  # see seqpipe.numerics


class Params:
    """params.yaml, checked at the top level when read; each stage then parses, strictly and with
    types, only the sections it uses (`section`), so a stage depends on exactly the keys it reads."""

    def __init__(self, raw: dict[str, Any], path: Path) -> None:
        self.raw, self.path = raw, path
        self.seed: int = convert(raw["seed"], int, "seed")
        check(0 <= self.seed < 2**32, "seed", "must be in 0..2**32-1 (numpy and torch seeds), "
              f"got {self.seed}")
        self.device: str = convert(raw["device"], str, "device")
        ok = self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:")
                                                        and self.device[5:].isdigit())
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
                self._parsed[key] = convert(self.raw["models"][model][section], cls,
                                            f"models.{model}.{section}")
            except ParamsError as exc:
                raise ParamsError(f"{self.path}: {exc}") from None
        return self._parsed[key]

    def train(self, model: str) -> TrainParams:
        return self.section(model, "train", TrainParams)


MAX_FILE_MIB = 10            # params.yaml is a few KB; a larger file is not a params file
MAX_NODES = 100_000          # values once aliases are expanded (params.yaml holds about 700)


def load_params(path: str | Path = DEFAULT_PARAMS, models: Iterable[str] | None = None,
                overrides: dict[str, Any] | None = None) -> Params:
    """Read params.yaml and check its shape: `seed`, `device`, `numerics`, and one section per model in
    `models` (the model folders), each with exactly the keys download, preprocess, model, train, evaluate.
    The sections' contents are checked when a stage reads them. `overrides` maps dotted keys to values."""
    path = Path(path)
    try:
        data = read_params_file(path)
        raw = read_yaml(data.decode("utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the repository root)") from None
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ParamsError(f"{path}: line {line}: not UTF-8 text") from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read ({exc.strerror})") from None
    except SeqpipeError as exc:
        raise ParamsError(f"{path}: {exc}" if not str(exc).startswith(f"{path}: ") else str(exc)) from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value)
    try:
        check_shape(raw, None if models is None else list(models))
        return Params(raw, path)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


_NOT_FILES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_params_file(path: Path) -> bytes:
    """The bytes of `path`, a regular file of at most MAX_FILE_MIB. A folder, FIFO, device or socket is
    refused before it is opened for reading (a FIFO cannot block, /dev/zero is not read), a larger file
    after MAX_FILE_MIB; OSErrors (a missing file, a denied permission) propagate. (Not seqpipe.io: it
    imports numpy, which must wait until seqpipe.numerics has pinned its kernels.)"""
    def refuse_special(mode: int) -> None:
        for test, kind in _NOT_FILES:
            if test(mode):
                raise SeqpipeError(f"{path}: is {kind}; --params takes a params.yaml file")

    refuse_special(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)   # replaced since the stat: never blocks
    with os.fdopen(fd, "rb") as fh:
        refuse_special(os.fstat(fd).st_mode)
        data = fh.read(MAX_FILE_MIB * 2**20 + 1)
    if len(data) > MAX_FILE_MIB * 2**20:
        raise SeqpipeError(f"{path}: larger than {MAX_FILE_MIB} MiB; --params takes a params.yaml file "
                           "(a few KB)")
    return data


def read_yaml(text: str) -> Any:
    """Parse YAML as DVC does (dvc.utils.serialize.parse_yaml: ruamel.yaml's safe loader, YAML 1.2): `010` is
    10, `1e-3` a number, `yes` a string, `1:30` a string, a key given twice an error. Plain data only; an
    alias that contains itself or expands past MAX_NODES values is refused. Errors are one-line
    SeqpipeErrors."""
    try:
        data = YAML(typ="safe", pure=False).load(text)
        _check_tree(data, set(), [MAX_NODES])
        return data
    except DuplicateKeyError as exc:
        key = re.match(r'found duplicate key "(.*)" with value', exc.problem or "")
        raise SeqpipeError(f"not valid YAML: duplicated key {key.group(1) if key else '?'!r} on line "
                           f"{exc.problem_mark.line + 1} (DVC refuses it too)") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise SeqpipeError(f"not valid YAML: {where}{what}{f' ({context})' if context else ''}"
                           .replace("\n", " ")) from None
    except RecursionError:
        raise SeqpipeError("nested too deeply to be a params file") from None
    except ValueError as exc:   # a value the loader cannot build, e.g. an integer of over 4300 digits
        raise SeqpipeError(f"not valid YAML: {first_line(exc)}") from None


def _check_tree(node: Any, ancestors: set[int], budget: list[int]) -> None:
    """Refuse an alias that contains itself (`a: &x [*x]`) or aliases that expand past the node budget."""
    budget[0] -= 1
    if budget[0] < 0:
        raise SeqpipeError(f"more than {MAX_NODES} values once its aliases (*name) are expanded; not "
                           "a params file")
    if isinstance(node, (dict, list)):
        if id(node) in ancestors:
            raise SeqpipeError("an alias (*name) refers to a mapping or list that contains it")
        ancestors.add(id(node))
        for child in node.values() if isinstance(node, dict) else node:
            _check_tree(child, ancestors, budget)
        ancestors.discard(id(node))


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
    """Check `value` against type `tp` (dataclass, Literal, list[...], X | None, scalars, Annotated[X, Range
    or Length]). A float is finite; an int or float field's Range and a list's Length are checked here."""
    if isinstance(tp, type) and is_dataclass(tp):
        if isinstance(value, tp):   # built (and checked) already
            return value
        _expect(isinstance(value, dict), key, f"expected a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(tp, include_extras=True)
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
    if origin is Annotated:
        inner, *bounds = typing.get_args(tp)
        value = convert(value, inner, key)
        for bound in bounds:
            bound.check(value, key)
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        _expect(value in choices, key, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return convert(value, inner[0], key)
        # e.g. int | Literal["auto"]: the first whose type fits; its range is final
        for alternative in inner:
            try:
                return convert(value, alternative, key)
            except _WrongType:
                pass
        raise _WrongType(f"{key}: expected {' or '.join(map(_describe_type, inner))}, got {value!r}")
    if origin is list:
        (inner,) = typing.get_args(tp)
        _expect(isinstance(value, list), key, f"expected a list, got {type(value).__name__}")
        return [convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        _expect(isinstance(value, (int, float)) and not isinstance(value, bool), key,
                f"expected a number, got {_shown(value)}{_yaml12_hint(value, 'a number')}")
        try:
            number = float(value)
        except OverflowError:   # an integer beyond float's range
            number = math.inf
        check(math.isfinite(number), key, f"must be finite, got {_number(value)}")
        return number
    if tp is int:
        _expect(isinstance(value, int) and not isinstance(value, bool), key,
                f"expected an integer, got {_shown(value)}{_yaml12_hint(value, 'an integer')}")
        return value
    if tp in (str, bool):
        _expect(isinstance(value, tp), key, f"expected {tp.__name__}, got "
                f"{_shown(value)}{_yaml12_hint(value, tp)}")
        return value
    raise TypeError(f"unsupported params type {tp!r} at {key}")


def _expect(condition: bool, key: str, message: str) -> None:
    """check() for a value of the wrong type: a union goes on to its next alternative."""
    if not condition:
        raise _WrongType(f"{key}: {message}")


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, float) else f"float {value}"


_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")


def _yaml12_hint(value: Any, wanted: Any) -> str:
    """Why a value that YAML 1.1 (PyYAML) would have read as `wanted` is not one: DVC reads YAML 1.2."""
    if isinstance(value, (dt.date, dt.datetime)) and wanted is str:
        return f" (YAML reads an unquoted date as a date: quote it, '{value.isoformat()}')"
    if not isinstance(value, str):
        return ""
    if wanted is bool and value.lower() in _YAML11_BOOLEANS:
        return " (params.yaml is YAML 1.2, as DVC reads it: write true or false)"
    if wanted is not str and _SEXAGESIMAL.fullmatch(value):
        return " (params.yaml is YAML 1.2, as DVC reads it: it has no base-60 numbers; write the number)"
    return ""


def _describe_type(tp: Any) -> str:
    if typing.get_origin(tp) is Annotated:
        return _describe_type(typing.get_args(tp)[0])
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
