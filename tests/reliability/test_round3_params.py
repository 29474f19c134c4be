"""Params, round 3: every numeric param of every model is finite and bounded (its range declared once, as
typing.Annotated metadata, and checked when params.yaml is read, before any stage runs), sizes that
multiply are bounded together, params files are regular files of at most 10 MiB, and params.yaml is
read as DVC reads it (YAML 1.2), so the values `dvc params diff` records are the values that run."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import time
import types
import typing
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest
import yaml

from seqpipe import pipelines
from seqpipe.params import SECTIONS, Length, Params, ParamsError, Range, TrainParams, load_params
from tests.conftest import REPO, error_lines, run, tiny_overrides, write_params

NAMES = pipelines.names()


def section_class(model: str, section: str) -> type:
    spec = pipelines.get(model)
    return {"train": TrainParams, "model": spec.model_params}.get(section) \
        or getattr(spec.stage(section), f"{section.capitalize()}Params")


def _strip(tp: Any) -> tuple[Any, list]:
    """(type without Annotated, its metadata)."""
    if typing.get_origin(tp) is Annotated:
        inner, *meta = typing.get_args(tp)
        return inner, meta
    return tp, []


def numeric_leaves(tp: Any, raw: Any, key: str) -> Iterator[tuple[str, Any, list, Any]]:
    """(dotted key, scalar type, its metadata, current value) of every int or float param under `key`
    (a list's first item stands for its items), following the dataclass hints over params.yaml's values."""
    tp, meta = _strip(tp)
    if is_dataclass(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        for f in fields(tp):
            if isinstance(raw, dict) and f.name in raw:
                yield from numeric_leaves(hints[f.name], raw[f.name], f"{key}.{f.name}")
    elif typing.get_origin(tp) in (typing.Union, types.UnionType):
        for alternative in typing.get_args(tp):
            yield from numeric_leaves(alternative, raw, key)
    elif typing.get_origin(tp) is list and isinstance(raw, list) and raw:
        yield from numeric_leaves(typing.get_args(tp)[0], raw[0], f"{key}[0]")
    elif tp in (int, float) and not isinstance(raw, (str, type(None))):
        yield key, tp, meta, raw


REPO_RAW = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
LEAVES = [(model, section, leaf) for model in NAMES for section in SECTIONS
          for leaf in numeric_leaves(section_class(model, section), REPO_RAW["models"][model][section], "")]


def set_item(raw: dict, dotted: str, value: Any) -> None:
    """Set `a.b[0].c`-style keys in nested dicts and lists."""
    node: Any = raw
    parts = dotted.replace("[", ".[").split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value


def _parse_with(base: Params, model: str, section: str, dotted: str, value: Any) -> ParamsError | None:
    """Parse `models.<model>.<section>` of `base` (params.yaml as load_params read it) with one value changed."""
    raw = copy.deepcopy(base.raw)
    set_item(raw["models"][model][section], dotted.lstrip("."), value)
    try:
        Params(raw, base.path).section(model, section, section_class(model, section))
    except ParamsError as exc:
        return exc
    return None


def test_every_numeric_param_of_every_model_declares_a_finite_range() -> None:
    """The structure behind the CLI checks below: each int and float field of every section dataclass
    (nested ones, list items and `int | auto` alternatives included) carries a Range, each list a Length."""
    unbounded: list[str] = []

    def walk(tp: Any, where: str, seen: set) -> None:
        tp, meta = _strip(tp)
        if is_dataclass(tp):
            if tp in seen:
                return
            seen.add(tp)
            assert getattr(tp, "__params_section__", False), f"{where}: {tp.__name__} is not a @params_section"
            hints = typing.get_type_hints(tp, include_extras=True)
            for f in fields(tp):
                walk(hints[f.name], f"{where}.{f.name}", seen)
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            for alternative in typing.get_args(tp):
                walk(alternative, where, seen)
        elif typing.get_origin(tp) is list:
            if not any(isinstance(m, Length) for m in meta):
                unbounded.append(f"{where} (list length)")
            walk(typing.get_args(tp)[0], f"{where}[]", seen)
        elif tp in (int, float) and not any(isinstance(m, Range) for m in meta):
            unbounded.append(where)

    for model in NAMES:
        for section in SECTIONS:
            walk(section_class(model, section), f"models.{model}.{section}", set())
    assert not unbounded, unbounded
    assert len(LEAVES) > 150   # the walk below really covers the file


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "huge", "-huge"])
def test_a_non_finite_or_huge_value_of_any_numeric_param_is_refused_naming_its_key(bad: str) -> None:
    """Every numeric leaf of params.yaml, for every model and section: inf, NaN and +-1e300 (10**30 for an
    integer) are each one ParamsError naming the file and that key."""
    accepted = []
    base = load_params(REPO / "params.yaml", NAMES)
    for model, section, (dotted, tp, _, _) in LEAVES:
        big = 10**30 if tp is int else 1e300
        value = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan, "huge": big, "-huge": -big}[bad]
        error = _parse_with(base, model, section, dotted, value)
        key = f"models.{model}.{section}{dotted}"
        if error is None or not str(error).startswith(f"{base.path}: {key}"):
            accepted.append((key, str(error)))
    assert not accepted, accepted


def _check_params(root: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return run(["seqpipe", *extra, "check-params"], root, check=False, timeout=timeout)


def _assert_refused(proc: subprocess.CompletedProcess, expected: str, root: Path) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert error_lines(proc.stderr) == lines[-1:] and len(lines) == 1, proc.stderr
    assert expected in lines[0], (expected, lines[0])
    assert "Traceback" not in proc.stderr and not (root / "data").exists()


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("models.bandwidth.train.lr", 1e300, "models.bandwidth.train.lr: must be in (0, 10], got 1e+300"),
    ("models.bandwidth.download.synthetic.noise_scale", math.inf,
     "models.bandwidth.download.synthetic.noise_scale: must be finite, got inf"),
    *(pytest.param(*case, marks=pytest.mark.slow) for case in [
        ("models.ice_type.train.weight_decay", 1e300,
         "models.ice_type.train.weight_decay: must be in [0, 1], got 1e+300"),
        ("models.freq_filter.download.synthetic.sample_rate_hz", math.inf,
         "models.freq_filter.download.synthetic.sample_rate_hz: must be finite"),
        ("models.bandwidth.download.synthetic.cadence_s", 10**12,
         "models.bandwidth.download.synthetic.cadence_s: must be in 1..86400"),
        ("models.bandwidth.download.synthetic.congestion_per_day", -1.0,
         "models.bandwidth.download.synthetic.congestion_per_day: must be >= 0, got -1"),
        ("models.crop_ndvi.evaluate.ridge_alpha", math.nan, "models.crop_ndvi.evaluate.ridge_alpha: must be finite")]),
])
def test_check_params_refuses_an_out_of_range_value_before_any_stage(tmp_path: Path, key: str, value: Any,
                                                                      expected: str) -> None:
    write_params(tmp_path / "params.yaml", {key: value})
    _assert_refused(_check_params(tmp_path), f"params.yaml: {expected}", tmp_path)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"models.crop_ndvi.model.hidden_size": 16_000, "models.crop_ndvi.model.num_layers": 8},
     "models.crop_ndvi.model.hidden_size: the LSTM's recurrent weights"),
    ({"models.freq_filter.download.synthetic.n_series": 10**7}, "models.freq_filter.download.synthetic.n_series: "
     "the stored series"),
    *(pytest.param(*case, marks=pytest.mark.slow) for case in [
        ({"models.freq_filter.model.num_layers": 100_000},
         "models.freq_filter.model.num_layers: must be in 1..32, got 100000"),
        ({"models.bandwidth.download.synthetic.n_rows": 10**7,
          "models.bandwidth.download.synthetic.cadence_s": 86_400},
         "models.bandwidth.download.synthetic.n_rows: n_rows x cadence_s would end in the year"),
        ({"models.crop_ndvi.download.synthetic.width": 10_000, "models.crop_ndvi.download.synthetic.height": 10_000},
         "models.crop_ndvi.download.synthetic.n_dates: the synthetic stack's pixels")]),
])
def test_sizes_that_multiply_are_refused_at_once_by_the_stage_that_reads_them(tmp_path: Path, overrides: dict,
                                                                              expected: str) -> None:
    """A network or data size whose factors are each in range but whose product is not: refused in one line
    within seconds by the stage that reads it (no network built, no data generated; check-params parses
    the same sections)."""
    write_params(tmp_path / "params.yaml", {**tiny_overrides(), **overrides})
    model = expected.split(".")[1]
    start = time.monotonic()
    proc = run(["seqpipe", "train" if ".model." in expected else "download", model], tmp_path, check=False,
               timeout=60)
    assert time.monotonic() - start < 20
    _assert_refused(proc, f"params.yaml: {expected}", tmp_path)


@pytest.mark.parametrize("kind", ["char-device", "fifo", *(pytest.param(kind, marks=pytest.mark.slow)
                                                             for kind in ("folder", "oversized", "socket"))])
def test_a_params_file_that_is_not_a_small_regular_file_is_refused_without_reading_it(tmp_path: Path,
                                                                                       kind: str) -> None:
    """--params naming /dev/zero, a FIFO nobody writes (it must not block), a folder, a socket or a file over
    10 MiB: one line naming it, at once."""
    target = {"char-device": "/dev/zero", "fifo": "conf.fifo", "folder": "conf", "oversized": "big.yaml",
              "socket": "conf.sock"}[kind]
    if kind == "fifo":
        os.mkfifo(tmp_path / target)
    elif kind == "folder":
        (tmp_path / target).mkdir()
    elif kind == "oversized":
        (tmp_path / target).write_text(f"seed: 1\n{'#' * (10 * 2**20)}\n", encoding="utf-8")
    elif kind == "socket":
        import socket
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(tmp_path / target))
    what = {"char-device": "is a character device", "fifo": "is a FIFO", "folder": "is a folder",
            "oversized": "larger than 10 MiB", "socket": "is a socket"}[kind]
    proc = _check_params(tmp_path, "--params", target, timeout=30)
    _assert_refused(proc, f"{target}: {what}; --params takes a params.yaml file", tmp_path)


def _params_text(edit: dict[str, str]) -> str:
    """The repository's params.yaml with lines `<indent>key: old` whose stripped text is a key of `edit`
    (the first such line) replaced by its value, spelled exactly as given."""
    lines = (REPO / "params.yaml").read_text(encoding="utf-8").splitlines()
    for old, new in edit.items():
        at = next(i for i, line in enumerate(lines) if line.split("#")[0].strip() == old)
        lines[at] = lines[at][: len(lines[at]) - len(lines[at].lstrip())] + new
    return "\n".join(lines) + "\n"


def test_seqpipe_runs_the_values_dvc_records_for_yaml_1_2_spellings(tmp_path: Path) -> None:
    """`010` is ten and `1e-3` a number, as for DVC (ruamel.yaml, YAML 1.2); PyYAML (YAML 1.1) read eight
    and a string. `dvc params diff` on a committed params.yaml and seqpipe's parse agree key by key."""
    text = _params_text({"epochs: 4": "epochs: 010", "lr: 0.05": "lr: 1e-3", "hidden_size: 24": "hidden_size: 0x10",
                         "weight_decay: 1.0e-5": "weight_decay: 2E-5"})
    (tmp_path / "params.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text('stages:\n  s:\n    cmd: "true"\n    params:\n    - models.freq_filter\n',
                                       encoding="utf-8")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "p"]):
        run(cmd, tmp_path)
    recorded = json.loads(run(["dvc", "params", "diff", "--all", "--json"], tmp_path).stdout)["params.yaml"]
    params = load_params(tmp_path / "params.yaml", NAMES)
    train = params.train("freq_filter")
    model = params.section("freq_filter", "model", section_class("freq_filter", "model"))
    ours = {"models.freq_filter.train.epochs": train.epochs, "models.freq_filter.train.lr": train.lr,
            "models.freq_filter.model.hidden_size": model.hidden_size,
            "models.freq_filter.train.weight_decay": train.weight_decay}
    assert ours == {"models.freq_filter.train.epochs": 10, "models.freq_filter.train.lr": 0.001,
                    "models.freq_filter.model.hidden_size": 16, "models.freq_filter.train.weight_decay": 2e-5}
    assert {key: recorded[key]["new"] for key in ours} == ours
    proc = _check_params(tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("amp: true", "amp: yes", "models.freq_filter.train.amp: expected bool, got str 'yes' (params.yaml is YAML 1.2"),
    ("epochs: 4", "epochs: 1:30", "models.freq_filter.train.epochs: expected an integer, got str '1:30' (params.yaml "
     "is YAML 1.2, as DVC reads it: it has no base-60 numbers"),
    *(pytest.param(*case, marks=pytest.mark.slow) for case in [
        ("bidirectional: true", "bidirectional: On",
         "models.freq_filter.model.bidirectional: expected bool, got str 'On'"),
        ("start: '2019-01-01'", "start: 2019-01-01",
         "models.ice_forecast.download.synthetic.start: expected str, got date")]),
])
def test_a_spelling_whose_meaning_changed_from_yaml_1_1_is_refused_naming_the_key(tmp_path: Path, old: str,
                                                                                   new: str, expected: str) -> None:
    """yes/on (booleans in YAML 1.1, strings for DVC), 1:30 (90 in YAML 1.1, a string for DVC), an unquoted
    date: one line naming the key and saying what to write, never a silent reinterpretation."""
    (tmp_path / "params.yaml").write_text(_params_text({old: new}), encoding="utf-8")
    _assert_refused(_check_params(tmp_path), f"params.yaml: {expected}", tmp_path)


@pytest.mark.parametrize(("text", "expected"), [
    ("seed: &loop [*loop]\n", "params.yaml: an alias (*name) refers to a mapping or list that contains it"),
    ("a: &a [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)),
     "params.yaml: more than 100000 values once its aliases (*name) are expanded"),
    *(pytest.param(*case, marks=pytest.mark.slow) for case in [
        ("seed: 1\nseed: 2\n", "params.yaml: not valid YAML: duplicated key 'seed' on line 2"),
        (f"seed: {'9' * 5000}\n", "params.yaml: not valid YAML: Exceeds the limit")]),
])
def test_yaml_that_dvc_would_refuse_or_that_expands_without_end_is_one_line(tmp_path: Path, text: str,
                                                                             expected: str) -> None:
    (tmp_path / "params.yaml").write_text(text, encoding="utf-8")
    _assert_refused(_check_params(tmp_path, timeout=30), expected, tmp_path)


@pytest.mark.parametrize(("center_hz", "width_hz", "order"), [(1.0, 1e-300, 2), (24.99, 1e-3, 2), (7.0, 1e6, 10)])
def test_the_band_pass_baseline_runs_at_every_width_and_order_its_params_allow(center_hz: float, width_hz: float,
                                                                               order: int) -> None:
    """freq_filter's evaluate.bandpass_width_hz and bandpass_order at the ends of their ranges, on a series
    shorter than scipy's default edge padding and a centre by Nyquist: a finite filtered series, no error."""
    from seqpipe.baselines import bandpass

    signals = np.random.default_rng(0).normal(size=(3, 20))
    assert np.isfinite(bandpass(signals, center_hz, width_hz, order, 50.0)).all()
