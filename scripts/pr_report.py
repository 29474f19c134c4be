"""The pull-request report: what the workspace changes against BASE, as markdown a reviewer can decide from.

    python scripts/pr_report.py BASE PLOTS_DIR [--noise FRACTION]     (scripts/pr_report.sh checks its
                                                                      arguments and calls this)

- Params: every params key whose value differs (`dvc params diff BASE --json`).
- Metrics, per metrics file (one per model): each headline metric's base value, PR value, delta,
  relative delta and a verdict, "better" or "worse" by the metric's direction
  (seqpipe.metrics.direction) when the change is beyond the noise threshold (default 0.5% of the base
  value), else "same"; beside it each baseline's value and whether the model still beats it. A file
  whose numbers are all identical at BASE is one line, "unchanged". Read from
  `dvc metrics diff BASE --json --all`: keys `test.<metric>` are the model's, `baselines.<name>.<metric>`
  a baseline's, any other key is a metric of its own.
- Plots: each plot whose data or image differs from BASE, drawn base against PR into PLOTS_DIR as
  one PNG (`dvc plots diff BASE --json`) and embedded with a relative link; PLOTS_DIR/index.html has
  every plot (`dvc plots diff BASE -o PLOTS_DIR`).

Errors are one line on stderr, prefixed "pr_report.sh: ", with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

SRC = Path(__file__).resolve().parents[1] / "src"
if SRC.is_dir():   # the seqpipe beside this script, whichever project the report is run in
    sys.path.insert(0, str(SRC))

try:
    from seqpipe.metrics import direction  # noqa: E402  (after the path set-up above)
except ImportError as _exc:
    sys.exit(f"pr_report.sh: cannot import seqpipe.metrics ({_exc}); run from the project's venv")

NOISE = 0.005        # default --noise: a relative change within 0.5% of the base value reads "same"
WORKSPACE = "workspace"
NONE = "—"
UTF8_ENV = {**os.environ, "PYTHONUTF8": "1"}   # dvc (Python) prints UTF-8 JSON in any locale


class ReportError(Exception):
    """One line for the user; exit code 2."""


def dvc(*args: str) -> Any:
    """Run `dvc ARGS --json` and return its parsed output (a failure is one ReportError line)."""
    proc = subprocess.run(["dvc", *args, "--json"], capture_output=True, encoding="utf-8", errors="replace",
                          env=UTF8_ENV)
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise ReportError(f"dvc {' '.join(args)} failed: {lines[0] if lines else f'exit code {proc.returncode}'}")
    # dvc exits 0 when a file of the workspace cannot be read, and the JSON shows its numbers as removed
    broken = [line.strip() for line in proc.stderr.splitlines() if "failed to load" in line and "'workspace'" in line]
    if broken:
        raise ReportError(f"dvc {' '.join(args)}: {broken[0].removeprefix('WARNING: ')}")
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise ReportError(f"dvc {' '.join(args)} --json printed no JSON ({exc})") from None


# ---------------------------------------------------------------- numbers


def fmt(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN."""
    return a == b or (is_number(a) and is_number(b) and math.isnan(a) and math.isnan(b))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def relative(old: float, new: float) -> float:
    """(new - old) / |old|; infinite when old is 0 and new is not."""
    if old == new:
        return 0.0
    return (new - old) / abs(old) if old != 0 else math.copysign(math.inf, new - old)


def verdict(key: str, old: Any, new: Any, noise: float) -> str:
    """better / worse / same (within `noise`, relative) / changed (no known direction) / new / removed."""
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
    sign = direction(key)
    if sign is None:
        return "changed"
    return "better" if (new - old) * sign > 0 else "worse"


def beats(key: str, model: Any, baseline: Any) -> bool | None:
    """Whether the model's value of metric `key` is better than the baseline's (None: cannot tell)."""
    sign = direction(key)
    if sign is None or not (is_number(model) and is_number(baseline)):
        return None
    return (model - baseline) * sign > 0


# ---------------------------------------------------------------- metrics


@dataclass
class Metric:
    """One row: the model's value of one metric at BASE and in the PR, and each baseline's."""

    name: str
    old: Any = None
    new: Any = None
    baselines: dict[str, tuple[Any, Any]] = field(default_factory=dict)   # name -> (old, new)


@dataclass
class MetricsFile:
    path: str
    rows: dict[str, Metric] = field(default_factory=dict)
    dropped: int = 0           # keys at BASE that the PR's file no longer has (moved or removed)

    @property
    def model(self) -> str:
        return Path(self.path).stem

    @property
    def baseline_names(self) -> list[str]:
        return sorted({b for row in self.rows.values() for b in row.baselines})

    def untouched(self) -> bool:
        """Every number the PR's file holds is the one at BASE (keys it dropped are counted apart)."""
        return all(
            same(row.old, row.new) and all(same(o, n) for o, n in row.baselines.values()) for row in self.rows.values())


def parse_metrics(diff: dict[str, dict[str, dict[str, Any]]]) -> list[MetricsFile]:
    """`dvc metrics diff BASE --json --all` -> one MetricsFile per path, rows keyed by metric name."""
    files = []
    for path in sorted(diff):
        out = MetricsFile(path)
        for key, change in diff[path].items():
            old, new = change.get("old"), change.get("new")
            if new is None and old is not None:
                out.dropped += 1
                continue
            parts = key.split(".")
            if parts[0] == "baselines" and len(parts) == 3:
                row = out.rows.setdefault(parts[2], Metric(parts[2]))
                row.baselines[parts[1]] = (old, new)
            else:
                name = key[len("test."):] if parts[0] == "test" and len(parts) > 1 else key
                row = out.rows.setdefault(name, Metric(name))
                row.old, row.new = old, new
        files.append(out)
    return files


def model_verdict(verdicts: list[str]) -> str:
    moved = {v for v in verdicts if v in ("better", "worse")}
    if moved == {"better"}:
        return "better"
    if moved == {"worse"}:
        return "worse"
    if moved:
        return "mixed"
    if any(v in ("changed", "new", "removed") for v in verdicts):
        return "changed"
    return "same"


def metrics_section(files: list[MetricsFile], noise: float) -> tuple[list[str], list[str]]:
    """(summary items, markdown lines) of the metrics files."""
    summary, lines, unchanged = [], [], []
    for f in files:
        if f.untouched():
            shown = ", ".join(f"{r.name} {fmt(r.new)}" for r in sorted(f.rows.values(), key=lambda r: r.name)
                              if r.new is not None)
            unchanged.append(f"- `{f.model}`: unchanged" + (f" ({shown})" if shown else "")
                             + (f"; {f.dropped} key(s) at BASE no longer in `{f.path}`" if f.dropped else ""))
            continue
        rows = sorted(f.rows.values(), key=lambda r: r.name)
        verdicts = [verdict(r.name, r.old, r.new, noise) for r in rows]
        overall = model_verdict(verdicts)
        moved = [f"{r.name} {pct(r.old, r.new)}" for r, v in zip(rows, verdicts) if v in ("better", "worse")]
        summary.append(f"`{f.model}` **{overall}**" + (f" ({', '.join(moved)})" if moved else ""))
        lines += [f"#### `{f.model}`: {overall}", "", f"`{f.path}`, {len(rows)} metric(s), "
                  f"baselines: {', '.join(f.baseline_names) or 'none'}", ""]
        names = f.baseline_names
        lines.append("| metric | base | PR | delta | relative | verdict |"
                     + "".join(f" {b} |" for b in names) + (" beats baselines |" if names else ""))
        lines.append("|---|---:|---:|---:|---:|---|" + "---:|" * len(names) + ("---|" if names else ""))
        for row, v in zip(rows, verdicts):
            delta = row.new - row.old if is_number(row.old) and is_number(row.new) else None
            cells = [f"`{row.name}`", fmt(row.old), fmt(row.new),
                     NONE if delta is None else f"{delta:+.4g}" if delta else "0", pct(row.old, row.new),
                     f"**{v}**" if v == "worse" else v]
            cells += [baseline_cell(*row.baselines.get(b, (None, None))) for b in names]
            if names:
                cells.append(beats_cell(row))
            lines.append("| " + " | ".join(cells) + " |")
        if f.dropped:
            lines += ["", f"{f.dropped} key(s) of `{f.path}` at BASE are no longer in it (moved or removed)."]
        lines.append("")
    if unchanged:
        lines += unchanged + [""]
        summary.append(f"{len(unchanged)} unchanged")
    if not files:
        lines += ["No metrics files.", ""]
    return summary, lines


def pct(old: Any, new: Any) -> str:
    if not (is_number(old) and is_number(new)):
        return NONE
    rel = relative(old, new)
    if rel == 0 or math.isnan(rel):
        return "0%" if rel == 0 else NONE
    return f"{rel:+.2%}" if math.isfinite(rel) else ("+inf" if rel > 0 else "-inf")


def baseline_cell(old: Any, new: Any) -> str:
    return fmt(new) if same(old, new) else f"{fmt(old)} → {fmt(new)}"


def beats_cell(row: Metric) -> str:
    """'all', or which baselines the model does not beat in the PR, and what changed since BASE."""
    lost, won, behind = [], [], []
    for b, (old_b, new_b) in sorted(row.baselines.items()):
        now, before = beats(row.name, row.new, new_b), beats(row.name, row.old, old_b)
        if now is None:
            continue
        if not now:
            (lost if before else behind).append(b)     # lost: it did beat it at BASE
        elif before is False:
            won.append(b)
    parts = [f"**now loses to {', '.join(lost)}**"] if lost else []
    parts += [f"not {', '.join(behind)}"] if behind else []
    parts += [f"now beats {', '.join(won)}"] if won else []
    return "; ".join(parts) if parts else "all"


# ---------------------------------------------------------------- params


def params_section(diff: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    rows = [(path, key, change.get("old"), change.get("new"))
            for path in sorted(diff) for key, change in sorted(diff[path].items())]
    if not rows:
        return ["No params changed.", ""]
    several = len({r[0] for r in rows}) > 1
    head = "| " + ("file | " if several else "") + "param | base | PR |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    out += [f"| {f'`{p}` | ' if several else ''}`{k}` | {fmt(o)} | {fmt(n)} |" for p, k, o, n in rows]
    return out + [""]


# ---------------------------------------------------------------- plots


def by_revision(entries: list[dict]) -> dict[str, Any]:
    """{revision: comparable content} of one plot: the data points it draws (vega: x, y and series,
    not the other columns of its file) or the image bytes."""
    out: dict[str, Any] = {}
    for entry in entries:
        if entry["type"] == "image":
            out[entry["revisions"][0]] = Path(entry["url"]).read_bytes()
            continue
        content = entry["content"]
        drawn = [f for f in (find_field(content, "x"), find_field(content, "y")) if f]
        points: dict[str, list[str]] = {}
        for point in content["data"]["values"]:
            kept = {k: point.get(k) for k in (*drawn, *SERIES_FIELDS)} if len(drawn) == 2 else \
                {k: v for k, v in point.items() if k != "rev"}
            points.setdefault(point["rev"], []).append(json.dumps(kept, sort_keys=True))
        out.update({rev: sorted(p) for rev, p in points.items()})
    return out


# The fields DVC adds to each point of a multi-file or multi-column plot: together they name its series
# (our templates colour by them and dash by revision, so no encoding field alone names the series).
SERIES_FIELDS = ("filename", "field")


def series_of(point: dict) -> str:
    """The series a DVC plot point belongs to (its file and y column), '' for a single-series plot."""
    return " ".join(str(point[k]) for k in SERIES_FIELDS if k in point)


def slug(plot: str) -> str:
    return "diff_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", plot.removesuffix(".png")).strip("_") + ".png"


def title_of(plot: str, entries: list[dict]) -> str:
    for entry in entries:
        title = entry.get("content", {}).get("title")
        text = title.get("text") if isinstance(title, dict) else title
        if text:
            return str(text)
    return plot


def find_field(node: Any, axis: str) -> str | None:
    """The first `encoding.<axis>.field` in a vega-lite spec, searched depth first."""
    if isinstance(node, dict):
        enc = node.get("encoding", {})
        if isinstance(enc, dict) and isinstance(enc.get(axis), dict) and "field" in enc[axis]:
            return enc[axis]["field"]
        for key in ("spec", "layer"):
            found = find_field(node.get(key), axis)
            if found:
                return found
    elif isinstance(node, list):
        for item in node:
            found = find_field(item, axis)
            if found:
                return found
    return None


def as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def draw(plot: str, entries: list[dict], base: str, path: Path) -> None:
    """One PNG of `plot`, BASE against the workspace."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ReportError(f"cannot draw the plots: {exc} (run from the project's venv)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title = title_of(plot, entries)
    images = [e for e in entries if e["type"] == "image"]
    if images:
        shown = sorted(((e["revisions"][0], plt.imread(e["url"])) for e in images), key=lambda r: r[0] != base)
        height, width = shown[0][1].shape[:2]
        fig, axes = plt.subplots(1, len(shown), squeeze=False,
                                 figsize=(min(16.0, 6.0 * len(shown)), min(16.0, 6.0 * len(shown)) * height
                                          / max(width * len(shown), 1) + 0.6))
        for ax, (rev, image) in zip(axes[0], shown):
            ax.imshow(image)
            ax.set_title(label(rev, base))
            ax.axis("off")
    else:
        content = entries[0]["content"]
        values = content["data"]["values"]
        x_field, y_field = find_field(content, "x"), find_field(content, "y")
        if "facet" in content or "spec" in content:     # DVC's confusion template: count (x, y) pairs per revision
            fig = confusion(plt, values, x_field, y_field, base)
        else:
            fig = lines(plt, values, x_field, y_field, base)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def label(rev: str, base: str) -> str:
    return f"base ({base})" if rev == base else "PR" if rev == WORKSPACE else rev


def lines(plt: Any, values: list[dict], x_field: str, y_field: str, base: str) -> Any:
    """Line plot: each series of the PR solid; the base's dashed where it differs from the PR's."""
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for point in values:
        key = (point["rev"], series_of(point))
        series.setdefault(key, []).append((as_float(point.get(x_field)), as_float(point.get(y_field))))
    groups = sorted({g for _, g in series})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, g in enumerate(groups):
        color = colors[k % len(colors)]
        new, old = series.get((WORKSPACE, g)), series.get((base, g))
        name = f"{g}, " if g else ""
        if new:
            ax.plot(*zip(*new), color=color, linewidth=1.5, label=f"{name}PR")
        if old and old != new:
            ax.plot(*zip(*old), color=color, linewidth=1.2, linestyle="--", alpha=0.8, label=f"{name}base")
    ax.set_xlabel(x_field)
    ax.set_ylabel(y_field if y_field != "dvc_inferred_y_value" else "value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def confusion(plt: Any, values: list[dict], x_field: str, y_field: str, base: str) -> Any:
    import numpy as np

    classes = sorted({str(p[x_field]) for p in values} | {str(p[y_field]) for p in values})
    revs = sorted({p["rev"] for p in values}, key=lambda r: r != base)
    fig, axes = plt.subplots(1, len(revs), squeeze=False, figsize=(4.5 * len(revs), 4.2))
    for ax, rev in zip(axes[0], revs):
        counts = np.zeros((len(classes), len(classes)), dtype=int)
        for p in values:
            if p["rev"] == rev:
                # one row per sample (ice_type) or per cell with its count (ice_change)
                counts[classes.index(str(p[y_field])), classes.index(str(p[x_field]))] += int(float(p.get("count", 1)))
        ax.imshow(counts, cmap="Blues")
        for (i, j), n in np.ndenumerate(counts):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > counts.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel(x_field)
        ax.set_ylabel(y_field)
        ax.set_title(label(rev, base))
    return fig


def plots_section(base: str, plots_dir: Path) -> list[str]:
    plots_dir.mkdir(parents=True, exist_ok=True)
    # every plot as HTML (index.html), then the data of each (images copied into plots_dir)
    proc = subprocess.run(["dvc", "plots", "diff", base, "-o", str(plots_dir)], capture_output=True,
                          encoding="utf-8", errors="replace", env=UTF8_ENV)
    if proc.returncode != 0:
        lines_ = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise ReportError(f"dvc plots diff {base} failed: {lines_[0] if lines_ else proc.returncode}")
    data = dvc("plots", "diff", base, "-o", str(plots_dir)).get("data", {})
    changed = []
    for plot, entries in data.items():
        revs = by_revision(entries)
        new, old = revs.get(WORKSPACE), revs.get(base)
        if new != old:
            changed.append((plot, entries, "added" if old is None else "removed" if new is None else "changed"))
    if not changed:
        return [f"No plot differs from `{base}`.", ""]
    out = [f"{len(changed)} plot(s) differ from `{base}` (lines: the PR solid, the base dashed where it differs; "
           "images: base left, PR right):", ""]
    for plot, entries, change in changed:
        name = slug(plot)
        draw(plot, entries, base, plots_dir / name)
        out += [f"**`{plot}`** ({change})", "", f"![{title_of(plot, entries)}]({quote((plots_dir / name).as_posix())})",
                ""]
    return out


# ---------------------------------------------------------------- the report


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, encoding="utf-8", errors="replace",
                          check=True).stdout.strip()


def report(base: str, plots_dir: Path, noise: float) -> str:
    params = params_section(dvc("params", "diff", base))
    summary, metrics = metrics_section(parse_metrics(dvc("metrics", "diff", base, "--all")), noise)
    plots = plots_section(base, plots_dir)
    head = [f"## DVC report: workspace at {git('rev-parse', '--short', 'HEAD')} against `{base}` "
            f"({git('rev-parse', '--short', base)})", ""]
    head += ["**Summary:** " + ("; ".join(summary) if summary else "no metrics files") + ".", ""]
    legend = (f"Verdicts: \"better\"/\"worse\" by each metric's direction when the change is more than "
              f"{noise:.1%} of the base value (`--noise`), else \"same\". Baseline columns: their value in this "
              "PR (base → PR where it moved); \"beats baselines\": whether the model's PR value is better than "
              "each baseline's.")
    return "\n".join(head + ["### Params", ""] + params + ["### Metrics", "", legend, ""] + metrics
                     + ["### Plots", ""] + plots).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pr_report.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("plots_dir", type=Path)
    parser.add_argument("--noise", type=float, default=NOISE,
                        help=f"relative change treated as noise, e.g. 0.005 = 0.5%% (default {NOISE})")
    args = parser.parse_args(argv)
    try:
        if not (0 <= args.noise < 1):
            raise ReportError(f"--noise {args.noise}: must be a fraction in [0, 1), e.g. 0.005 for 0.5%")
        sys.stdout.reconfigure(encoding="utf-8")   # markdown is UTF-8, whatever the locale (LC_ALL=C)
        sys.stdout.write(report(args.base, args.plots_dir, args.noise))
    except ReportError as exc:
        print(f"pr_report.sh: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
