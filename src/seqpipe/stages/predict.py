"""`seqpipe predict`: run a trained model on new input through its folder's `predict` module.

Each model's `predict` module holds two layers: `predict_array(network, payload, *arrays, **options)`,
the array-in/array-out core that `seqpipe.load(...).predict` calls, and `predict(network, payload,
args, params)`, which reads the input files, calls that core and writes the output file, returning
the one-line summary the CLI prints (what was written, what was masked and why).

The output is checked before anything runs: it may not be the model file, a checkpoint, an input,
params.yaml, dvc.yaml, dvc.lock or anything dvc.yaml names (unless --force), and must be a file path
in an existing folder ('out/' names a folder: refused), or a FIFO or a device, which is written into,
never replaced (io.atomic_path). A model file must carry its sha256 digest (unless --trust-unverified).
"""

from __future__ import annotations

import numbers
from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seqpipe import checkpoint, layout
from seqpipe.data.series import RangeCheck
from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import output_file, output_target
from seqpipe.params import Params
from seqpipe.spec import ModelSpec

REPO_FILES = ("dvc.yaml", "dvc.lock", ".dvc", ".git", ".dvcignore", ".gitignore")


class PredictInputError(SeqpipeError, ValueError):
    """An in-memory input of `Predictor.predict` with the wrong shape, columns or values."""


FLOAT32_MAX = float(np.finfo(np.float32).max)   # the networks compute in float32: larger values overflow
NUMERIC_KINDS = "iuf"   # signed, unsigned, float; bool (a mask), complex, text, dates and objects are refused


def as_array(value: Any, name: str, expected: str, ndim: tuple[int, ...], dtype: type | None = np.float64
             ) -> np.ndarray:
    """`value` as a real numeric array of one of the dimensionalities `ndim`, cast to `dtype` (None keeps
    its numeric dtype) only once it is checked, or a PredictInputError naming the argument and what
    `expected` describes. Checked before the cast: the dtype (integers and floats only: bool, complex,
    text, dates and objects are refused, never cast) and the magnitude (a finite value beyond float32's
    range, the precision the networks compute in, is refused; inf and NaN are left to `require_range`)."""
    if isinstance(value, (str, bytes)):
        raise PredictInputError(f"{name}: not numeric (a {type(value).__name__}); expected {expected}")
    if isinstance(value, np.ma.MaskedArray) and value.dtype.kind in NUMERIC_KINDS:
        # masked values as NaN: masked (or refused) as NaN is
        value = value.astype(np.float64).filled(np.nan)  # type: ignore[attr-defined]  # stub: astype -> ndarray
    try:
        array = np.asarray(value)
    # ragged nested lists, a tensor on a GPU or with grad
    except (TypeError, ValueError, RuntimeError) as exc:
        raise PredictInputError(f"{name}: not an array ({first_line(exc)}); expected {expected}") from None
    if array.dtype.kind == "O":
        array = _object_numbers(array, name, expected)
    if array.dtype.kind not in NUMERIC_KINDS:
        what = {"b": "boolean values: a mask? ", "c": "complex values: "}.get(array.dtype.kind, "")
        raise PredictInputError(f"{name}: not numeric ({what}dtype {array.dtype}; only integers and "
                                f"real floats are taken, never cast); expected {expected}")
    if array.ndim not in ndim:
        raise PredictInputError(f"{name}: shape {array.shape}; expected {expected}")
    if array.size == 0:
        raise PredictInputError(f"{name}: empty (shape {array.shape}); expected {expected}")
    if array.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            huge = np.isfinite(array) & (np.abs(array) > FLOAT32_MAX)
        if huge.any():
            where = tuple(int(i) for i in np.argwhere(huge)[0])
            raise PredictInputError(f"{name}: value {float(array[where]):.6g} at index {where} is "
                                    f"beyond float32's range (|value| <= {FLOAT32_MAX:.4g}), the precision "
                                    "the model computes in")
    return array if dtype is None else array.astype(dtype)


def _object_numbers(array: np.ndarray, name: str, expected: str) -> np.ndarray:
    """An object array (e.g. a list mixing ints and floats) as float64 when every element is a real
    number (bool excluded); else the PredictInputError naming the first other element."""
    for index, item in np.ndenumerate(array):
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Real):
            raise PredictInputError(f"{name}: not numeric (element {item!r} at index "
                                    f"{tuple(map(int, index))} is not a real number); expected {expected}")
    try:
        return array.astype(np.float64)
    except (OverflowError, TypeError, ValueError) as exc:   # an int beyond float64
        raise PredictInputError(f"{name}: not representable as float64 ({first_line(exc)}); "
                                f"expected {expected}") \
            from None


def require_finite_computed(computed: np.ndarray, given: np.ndarray, name: str, what: str) -> None:
    """Refuse when `computed` (float32, e.g. the standardised input, shaped like `given`) holds an inf or
    NaN where `given` is finite: values in float32's range that overflow once `what` is applied."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(computed) & np.isfinite(given)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise PredictInputError(f"{name}: value {float(given[where]):.6g} at index {where} overflows "
                                f"float32, the precision the model computes in, once {what}; it lies far "
                                "outside the training data")


def check_real(value: Any, name: str, low: float = -np.inf, high: float = np.inf,
               expected: str = "") -> float:
    """A keyword option that must be a real number (an int or float, not bool or text) in the open
    interval (low, high): as float, or a PredictInputError naming the option."""
    wanted = expected or f"a number strictly between {low:g} and {high:g}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise PredictInputError(f"{name}: {value!r} is a {type(value).__name__}; expected {wanted}")
    number = float(value)
    if not (np.isfinite(number) and low < number < high):
        raise PredictInputError(f"{name}: {value!r}; expected {wanted}")
    return number


def require_range(array: np.ndarray, name: str, low: float = -np.inf, high: float = np.inf,
                  nan_ok: bool = False, unit: str = "") -> None:
    """Refuse inf, NaN (unless `nan_ok`: NaN then marks masked values) and values outside [low, high],
    naming the argument, the first such value and its index."""
    with np.errstate(invalid="ignore"):
        bad = (array < low) | (array > high) | np.isinf(array) | (np.isnan(array) & (not nan_ok))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(array[where])
        if np.isfinite(value) or np.isfinite(low) or np.isfinite(high):
            allowed = f"{low:g}..{high:g}{unit}" + (" (NaN where masked)" if nan_ok else "")
            raise PredictInputError(f"{name}: value {value:g} at index {where} is outside {allowed}")
        raise PredictInputError(f"{name}: value {value:g} at index {where} is not finite")


def table_values(data: Any, columns: list[str], name: str, min_rows: int = 1, why: str = "") -> np.ndarray:
    """A DataFrame holding `columns` (others are ignored) or an array [rows, len(columns)] in that
    column order -> float64 [rows, columns]; finite values and at least `min_rows` rows (`why`)."""
    import pandas as pd

    expected = (f"a DataFrame with columns {', '.join(columns)} or an array [rows, {len(columns)}] in "
                "that order")
    if isinstance(data, pd.DataFrame):
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise PredictInputError(f"{name}: missing column(s) {', '.join(missing)} (found: "
                                    f"{', '.join(map(str, data.columns))}); expected {expected}")
        twice = [c for c in columns if list(data.columns).count(c) > 1]
        if twice:
            raise PredictInputError(f"{name}: column {twice[0]!r} appears more than once; "
                                    f"expected {expected}")
        for column in columns:
            dtype = data[column].dtype
            if dtype.kind not in NUMERIC_KINDS:
                raise PredictInputError(f"{name}: column {column!r} is not numeric (dtype {dtype}; "
                                        "only integers and real floats are taken, never cast); "
                                        f"expected {expected}")
        data = data[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    values = as_array(data, name, expected, (1, 2) if len(columns) == 1 else (2,))
    values = values.reshape(len(values), -1)
    if values.shape[1] != len(columns):
        raise PredictInputError(f"{name}: shape {values.shape}; expected {expected}")
    require_range(values, name)
    if len(values) < min_rows:
        raise PredictInputError(f"{name}: {len(values)} rows, need at least {min_rows}"
                                + (f" ({why})" if why else ""))
    return values


def range_check(payload: dict[str, Any], columns: list[str]) -> RangeCheck | None:
    """A check of predict-time inputs (`columns` in the order given to `add`) against the training range
    that preprocess saved in the stats; None for a model file trained before the stats held it."""
    stats = payload["stats"]
    if "train_range" not in stats:
        return None
    return RangeCheck(columns, stats["train_range"], stats["range_margin"])


def warn_outside_training(ranges: RangeCheck | None, payload: dict[str, Any], source: str,
                          consequence: str | None = None) -> None:
    """Log one line per input column with rows beyond the training range (see RangeCheck), saying what
    the model makes of them: `consequence`, or what the network's normalisation does."""
    if ranges is None:
        return
    if consequence is None:
        normalisation = (payload.get("network_args") or {}).get("normalisation", "global")
        consequence = (
            "the network reads globally standardised windows and extrapolates there: forecasts may "
            "saturate (a model trained with model.normalisation difference or revin follows the level)"
            if normalisation == "global" else
            f"the network reads each window relative to itself (normalisation {normalisation}), but such "
            "values were never seen in training")
    ranges.warn(source, consequence)


def run(spec: ModelSpec, params: Params, args: Namespace) -> str:
    """Load models/<model>/model.pt (or --model-file), write the model's prediction for the input and
    return the one-line summary the CLI prints."""
    if not spec.has_stage("predict"):
        raise SeqpipeError(f"model {spec.name!r} has no predict command")
    inputs = [Path(given) for given in (getattr(args, name, None) for name in spec.predict_inputs)
              if given is not None]
    for given in inputs:
        if not given.exists():
            raise SeqpipeError(f"{given}: not found")
    model_file = Path(args.model_file or layout.model_file(spec.name))
    args = Namespace(**{**vars(args), "output": output_file(args.output)})   # 'out/' names a folder: refused
    check_output(args.output, spec.name, model_file, inputs, Path(args.params), force=args.force)
    module = spec.stage("predict")
    network, payload = checkpoint.load_model(model_file, spec.name, trust_unverified=args.trust_unverified)
    if "stats" not in payload:
        payload = {**payload, "stats": checkpoint_stats(spec.name, model_file, payload)}
    return module.predict(network, payload, args, params)


def check_output(output: Path, model: str, model_file: Path, inputs: list[Path], params_file: Path,
                 force: bool = False) -> None:
    """Refuse an --output that is a folder or in a missing folder, and (unless `force`) one that would
    overwrite the model file, a checkpoint, an input, the params, the DVC files or a DVC-tracked path.
    A FIFO or a device is written into, a symbolic link followed (see io.atomic_path); a socket, a link
    to a read-only file and a name too long for the file system are refused here, before any work."""
    kind, target = output_target(output)
    if not force:
        protected = [(model_file, "the model file predict reads"),
                     (layout.model_dir(model), "the model's folder (model file, checkpoints: DVC outputs)"),
                     (params_file, "the params file"),
                     *[(path, "an input of this predict") for path in inputs],
                     *[(Path(name), "a DVC/git file of the repository") for name in REPO_FILES],
                     *[(path, "a path DVC tracks (dvc.yaml)") for path in dvc_paths(Path("dvc.yaml"))]]
        target = output.resolve()
        for path, what in protected:
            if target == path.resolve():
                raise SeqpipeError(f"{output}: is {what}; choose another --output, or pass --force to "
                                   "overwrite it")
            if path.resolve() in target.parents:
                raise SeqpipeError(f"{output}: is inside {path}, {what}; choose another --output, or "
                                   "pass --force")
    if kind == "replace" and not target.parent.is_dir():
        raise SeqpipeError(f"{target.parent}: folder of --output does not exist; create it first")


def dvc_paths(dvc_yaml: Path) -> list[Path]:
    """Every deps/outs/metrics path that dvc.yaml names (templated `${...}` entries left out)."""
    try:
        spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):   # unreadable, not UTF-8, not YAML: nothing to protect
        return []
    if not isinstance(spec, dict):
        return []
    entries: list[Any] = list(spec.get("metrics") or [])
    for stage in (spec.get("stages") or {}).values():
        entries += [*(stage.get("deps") or []), *(stage.get("outs") or []), *(stage.get("metrics") or [])]
    names = [next(iter(e)) if isinstance(e, dict) else e for e in entries]
    return [Path(name) for name in names if isinstance(name, str) and "${" not in name]


def checkpoint_stats(model: str, model_file: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing stats a training checkpoint (best.pt, last.pt, epoch_NNNN.pt) lacks: those of
    models/<model>/model.pt when it comes from the same training run (same fingerprint: params, data
    and code); otherwise an error that says what predict expects."""
    trained = layout.model_file(model)
    epoch = f" (epoch {payload['epoch']})" if "epoch" in payload else ""
    if trained.exists() and trained.resolve() != model_file.resolve():
        other = checkpoint.load(trained)
        if "stats" in other and other.get("fingerprint") == payload.get("fingerprint"):
            return other["stats"]
    raise SeqpipeError(
        f"{model_file}: a training checkpoint{epoch} without the preprocessing stats predict needs, and "
        f"{trained} is not from the same training run; --model-file takes a model.pt written by "
        f"`seqpipe train {model}` (or one of its run's checkpoints once that model.pt exists)")
