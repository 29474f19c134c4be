"""The metrics of a report: DVC's metrics files across revisions as one table, and the verdict on each
change (better / worse by the metric's direction, `seqpipe.metrics.direction`, beyond a noise threshold)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqpipe import pipelines
from seqpipe.errors import SeqpipeError
from seqpipe.metrics import direction
from seqpipe.report.dvc_json import WORKSPACE, dvc_json, dvc_run

NOISE = 0.005   # a relative change within 0.5% of the earlier value reads "same"
NONE = "—"


@dataclass
class MetricsTable:
    """{metrics file: {metric key: [value per column]}}; a value is None where the file or key is absent."""

    columns: list[str]
    files: dict[str, dict[str, list]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # what DVC could not load: a missing file, and where


def collect_metrics(revisions: list[str]) -> MetricsTable:
    """No revision: the workspace; one: it and the workspace; more: each, each later one diffed against
    the first. A metrics file of the workspace that DVC cannot parse is a SeqpipeError naming it."""
    columns = (revisions if len(revisions) > 1 else [*revisions, WORKSPACE]) if revisions else [WORKSPACE]
    table = MetricsTable(columns)
    if not revisions:
        show = dvc_json("metrics", "show")
        table.notes = _workspace_problems(show)
        for rev_data in show.values():
            for path, entry in (rev_data.get("data") or {}).items():
                for key, value in _flatten(entry.get("data") or {}).items():
                    table.files.setdefault(path, {})[key] = [value]
        return _without_training_summaries(table)
    warnings: list[str] = []
    for i, rev in enumerate(columns[1:], start=1):
        diff, said = dvc_run("metrics", "diff", "--all", columns[0], *([] if rev == WORKSPACE else [rev]))
        warnings += said
        for path, metrics in diff.items():
            for key, change in metrics.items():
                row = table.files.setdefault(path, {}).setdefault(key, [None] * len(columns))
                row[0], row[i] = change.get("old"), change.get("new")
    if any(f"'{WORKSPACE}'" in w for w in warnings):
        table.notes += _workspace_problems(dvc_json("metrics", "show"))
    table.notes += [w for w in dict.fromkeys(warnings) if f"'{WORKSPACE}'" not in w]
    return _without_training_summaries(table)


def _without_training_summaries(table: MetricsTable) -> MetricsTable:
    """Leave out DVCLive's summary of a training (models/<model>/live/metrics.json: the last epoch's losses
    and lr, a metrics output so that `dvc exp show` shows a running experiment): the reports show the
    training as its curves, among the plots, and compare the models by their test metrics."""
    table.files = {path: rows for path, rows in table.files.items() if not _is_training_summary(path)}
    return table


def _is_training_summary(path: str) -> bool:
    return Path(path).match("models/*/live/metrics.json")


def _workspace_problems(show: dict) -> list[str]:
    """Notes on the workspace's missing metrics files from `dvc metrics show --json`; a file that exists
    but cannot be parsed raises."""
    notes: list[str] = []
    for rev_data in show.values():
        for path, entry in (rev_data.get("data") or {}).items():
            error = entry.get("error")
            if not error:
                continue
            if error.get("type") == "FileNotFoundError":
                notes.append(f"{path}: not in the {WORKSPACE} (not produced yet, or removed)")
                continue
            msg = str(error.get("msg") or error.get("type"))
            raise SeqpipeError(f"{path}: DVC cannot read it ({msg.rsplit(', ', 1)[-1]})")
    return notes


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def metrics_model(path: str) -> str:
    """The model of a metrics file: `metrics/<model>.json`; any other file is named by its path."""
    p = Path(path)
    return p.stem if p.parent.name == "metrics" else path


def own_directions(path: str) -> Mapping[str, int]:
    """Which way the own metrics of the model whose metrics file is `path` are better (its ModelSpec's
    `metric_directions`); none for another file or a model this checkout does not have."""
    model = metrics_model(path)
    return pipelines.get(model).metric_directions if model in pipelines.names() else {}


# ---------------------------------------------------------------- numbers and verdicts


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN."""
    return a == b or (is_number(a) and is_number(b) and math.isnan(a) and math.isnan(b))


def relative(old: float, new: float) -> float:
    """(new - old) / |old|; infinite when old is 0 and new is not."""
    if old == new:
        return 0.0
    return (new - old) / abs(old) if old != 0 else math.copysign(math.inf, new - old)


def pct(old: Any, new: Any) -> str:
    """The relative change as a signed percentage, '0%', or '—' where there is none."""
    if not (is_number(old) and is_number(new)):
        return NONE
    rel = relative(old, new)
    if rel == 0 or math.isnan(rel):
        return "0%" if rel == 0 else NONE
    return f"{rel:+.2%}" if math.isfinite(rel) else ("+inf" if rel > 0 else "-inf")


def verdict(key: str, old: Any, new: Any, noise: float = NOISE, own: Mapping[str, int] | None = None) -> str:
    """better / worse / same (within `noise`, relative) / changed (no known direction) / new / removed;
    `own`: the model's own metric directions (own_directions)."""
    if old is None:
        return "new"
    if new is None:
        return "removed"
    if not (is_number(old) and is_number(new)):
        return "same" if old == new else "changed"
    if math.isnan(old) or math.isnan(new):
        return "same" if math.isnan(old) and math.isnan(new) else "changed"
    if abs(relative(old, new)) <= noise:
        return "same"
    sign = direction(key, own)
    if sign is None:
        return "changed"
    return "better" if (new - old) * sign > 0 else "worse"


def beats(key: str, model: Any, baseline: Any, own: Mapping[str, int] | None = None) -> bool | None:
    """Whether the model's value of metric `key` is better than the baseline's (None: cannot tell)."""
    sign = direction(key, own)
    if sign is None or not (is_number(model) and is_number(baseline)):
        return None
    return (model - baseline) * sign > 0


def overall(verdicts: list[str]) -> str:
    """One model's verdict from its metrics': better, worse, mixed, changed or same."""
    moved = {v for v in verdicts if v in ("better", "worse")}
    if len(moved) == 1:
        return moved.pop()
    if moved:
        return "mixed"
    return "changed" if any(v in ("changed", "new", "removed") for v in verdicts) else "same"


# ---------------------------------------------------------------- one model's metrics, old against new


@dataclass
class Metric:
    """One metric of the model at the first and last column, and each baseline's (old, new)."""

    name: str
    old: Any = None
    new: Any = None
    baselines: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class MetricsFile:
    path: str
    rows: dict[str, Metric] = field(default_factory=dict)
    dropped: int = 0           # keys of the old revision that the new one no longer has

    @property
    def model(self) -> str:
        return metrics_model(self.path)

    @property
    def directions(self) -> Mapping[str, int]:
        return own_directions(self.path)

    @property
    def baseline_names(self) -> list[str]:
        return sorted({b for row in self.rows.values() for b in row.baselines})

    def untouched(self) -> bool:
        """Every number the new file holds is the old one (keys it dropped are counted apart)."""
        return all(same(r.old, r.new) and all(same(o, n) for o, n in r.baselines.values())
                   for r in self.rows.values())


def metrics_files(table: MetricsTable) -> list[MetricsFile]:
    """The table's first column against its last, per file: keys `test.<metric>` are the model's,
    `baselines.<name>.<metric>` a baseline's, any other key is a metric of its own."""
    files = []
    for path in sorted(table.files):
        out = MetricsFile(path)
        for key, values in table.files[path].items():
            old, new = values[0], values[-1]
            if new is None and old is not None:
                out.dropped += 1
                continue
            parts = key.split(".")
            if parts[0] == "baselines" and len(parts) == 3:
                out.rows.setdefault(parts[2], Metric(parts[2])).baselines[parts[1]] = (old, new)
            else:
                name = key[len("test."):] if parts[0] == "test" and len(parts) > 1 else key
                row = out.rows.setdefault(name, Metric(name))
                row.old, row.new = old, new
        files.append(out)
    return files
