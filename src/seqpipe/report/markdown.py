"""`seqpipe pr-report BASE`: what the workspace changes against BASE, as markdown a reviewer can decide
from (the pull-request comment; scripts/pr_report.sh is this command).

- Params: every params key whose value differs (`dvc params diff BASE --json`).
- Metrics, per metrics file (one per model): each metric's BASE value, PR value, delta, relative delta
  and verdict (report/metrics.py), beside each baseline's value and whether the model still beats it.
  A file whose numbers are all identical at BASE is one line, "unchanged".
- Plots: each plot whose drawn data or image differs from BASE: a chart as DVC's Vega-Lite spec (our
  templates, both revisions in one chart) rendered to PNG by vl-convert, an image plot's two PNGs as
  they are; all into PLOTS_DIR and embedded with relative links. PLOTS_DIR/index.html is the
  `seqpipe report BASE` page of every plot and metric (offline, interactive).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_path
from seqpipe.report import page
from seqpipe.report.collect import Collected, collect
from seqpipe.report.dvc_json import WORKSPACE, UsageError, dvc_json, require_commit, short_sha
from seqpipe.report.metrics import (
    NOISE,
    NONE,
    Metric,
    MetricsFile,
    beats,
    is_number,
    metrics_files,
    overall,
    pct,
    same,
    verdict,
)
from seqpipe.report.plots import changed_plots, error_text, plot_title, slug, to_png

DEFAULT_PLOTS_DIR = Path("dvc_plots")


def fmt(value: Any) -> str:
    if value is None:
        return NONE
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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


# ---------------------------------------------------------------- metrics


def baseline_cell(old: Any, new: Any) -> str:
    return fmt(new) if same(old, new) else f"{fmt(old)} → {fmt(new)}"


def beats_cell(row: Metric, own: Mapping[str, int]) -> str:
    """'all', or which baselines the model does not beat in the PR, and what changed since BASE; `own`:
    the model's own metric directions."""
    lost: list[str] = []
    won: list[str] = []
    behind: list[str] = []
    for b, (old_b, new_b) in sorted(row.baselines.items()):
        now, before = beats(row.name, row.new, new_b, own), beats(row.name, row.old, old_b, own)
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


def file_table(f: MetricsFile, rows: list[Metric], verdicts: list[str]) -> list[str]:
    names = f.baseline_names
    out = ["| metric | base | PR | delta | relative | verdict |" + "".join(f" {b} |" for b in names)
           + (" beats baselines |" if names else ""),
           "|---|---:|---:|---:|---:|---|" + "---:|" * len(names) + ("---|" if names else "")]
    for row, v in zip(rows, verdicts, strict=True):
        delta = row.new - row.old if is_number(row.old) and is_number(row.new) else None
        shown = NONE if delta is None else f"{delta:+.4g}" if delta else "0"
        cells = [f"`{row.name}`", fmt(row.old), fmt(row.new), shown, pct(row.old, row.new),
                 f"**{v}**" if v == "worse" else v]
        cells += [baseline_cell(*row.baselines.get(b, (None, None))) for b in names]
        out.append("| " + " | ".join(cells + ([beats_cell(row, f.directions)] if names else [])) + " |")
    return out


def metrics_section(files: list[MetricsFile], noise: float) -> tuple[list[str], list[str]]:
    """(summary items, markdown lines) of the metrics files."""
    summary: list[str] = []
    lines: list[str] = []
    quiet: list[str] = []
    unchanged = 0
    for f in files:
        gone = f"{f.dropped} key(s) at BASE no longer in `{f.path}`"
        if not f.rows:
            summary.append(f"`{f.model}` **removed**")
            quiet.append(f"- `{f.model}`: **removed** (`{f.path}` holds none of its {f.dropped} key(s) "
                         "at BASE)")
        elif f.untouched():
            unchanged += 1
            shown = ", ".join(f"{r.name} {fmt(r.new)}" for r in sorted(f.rows.values(), key=lambda r: r.name)
                              if r.new is not None)
            quiet.append(f"- `{f.model}`: unchanged ({shown})" + (f"; {gone}" if f.dropped else ""))
        else:
            rows = sorted(f.rows.values(), key=lambda r: r.name)
            verdicts = [verdict(r.name, r.old, r.new, noise, f.directions) for r in rows]
            said = overall(verdicts)
            moved = [f"{r.name} {pct(r.old, r.new)}" for r, v in zip(rows, verdicts, strict=True)
                     if v in ("better", "worse")]
            summary.append(f"`{f.model}` **{said}**" + (f" ({', '.join(moved)})" if moved else ""))
            lines += [f"#### `{f.model}`: {said}", "", f"`{f.path}`, {len(rows)} metric(s), "
                      f"baselines: {', '.join(f.baseline_names) or 'none'}", ""]
            lines += file_table(f, rows, verdicts)
            lines += ["", f"{gone} (moved or removed)."] if f.dropped else []
            lines.append("")
    lines += quiet + [""] if quiet else []
    summary += [f"{unchanged} unchanged"] if unchanged else []
    if not files:
        lines += ["No metrics files.", ""]
    return summary, lines


# ---------------------------------------------------------------- plots


def plots_section(c: Collected, base: str, plots_dir: Path) -> tuple[list[str], dict[str, bytes]]:
    """(markdown lines, {file name in plots_dir: PNG bytes}) of the plots that differ from `base`."""
    changed = changed_plots(c.plots, base, WORKSPACE)
    problems = [f"- {error_text(err)}" for err in c.errors]
    tail = ["DVC could not load these plots:", "", *problems, ""] if problems else []
    if not changed:
        return [f"No plot differs from `{base}`.", "", *tail], {}
    files: dict[str, bytes] = {}
    out = [f"{len(changed)} plot(s) differ from `{base}` (charts as DVC draws them, with this project's "
           f"templates: both revisions in one chart; image plots: `{base}`, then the PR):", ""]
    for plot_id, change in changed:
        entries, title = c.plots[plot_id], plot_title(plot_id, c.plots[plot_id])
        shown: list[tuple[str, str]] = []
        for entry in entries:
            if entry.get("type") == "vega":
                name = f"diff_{slug(plot_id)}.png"
                files[name] = to_png(plot_id, entry["content"])
                shown.append((title, name))
            elif entry.get("type") == "image" and entry["revisions"][0] in (base, WORKSPACE):
                side = "PR" if entry["revisions"][0] == WORKSPACE else base
                name = f"diff_{slug(plot_id)}_{'pr' if side == 'PR' else 'base'}.png"
                files[name] = Path(entry["url"]).read_bytes()
                shown.append((f"{title}, {side}", name))
        shown.sort(key=lambda s: s[1].endswith("_pr.png"))
        out += [f"**`{plot_id}`** ({change})", ""]
        out += [f"![{alt}]({quote((plots_dir / name).as_posix())})" for alt, name in shown] + [""]
    return out + tail, files


# ---------------------------------------------------------------- the report


def legend(noise: float) -> str:
    return (f'Verdicts: "better"/"worse" by each metric\'s direction when the change is more than '
            f'{noise:.1%} of the base value (`--noise`), else "same". Baseline columns: their value in this '
            'PR (base → PR where it moved); "beats baselines": whether the model\'s PR value is better than '
            "each baseline's.")


def report(base: str, plots_dir: Path = DEFAULT_PLOTS_DIR, noise: float | None = None,
           models: list[str] | None = None) -> str:
    """The markdown report of the workspace against `base` (`noise`: default NOISE); its PNGs and
    index.html are written into `plots_dir` once everything is rendered (nothing is written on an error)."""
    noise = NOISE if noise is None else noise
    require_commit(base)
    if plots_dir.exists() and not plots_dir.is_dir():
        raise UsageError(f"PLOTS_DIR {plots_dir}: exists and is not a folder")
    if not Path("dvc.yaml").is_file():
        raise SeqpipeError(f"no dvc.yaml in {os.getcwd()} (run from the project root)")
    params = params_section(dvc_json("params", "diff", base))
    with tempfile.TemporaryDirectory(prefix="seqpipe-pr-report-") as tmp:
        c = collect([base], Path(tmp), models)
        summary, metrics = metrics_section(metrics_files(c.metrics), noise)
        plots, files = plots_section(c, base, plots_dir)
        index = page.render(c)[0] if c.plots else None
    notes = [f"- {note}" for note in c.metrics.notes]
    head = [f"## DVC report: workspace at {short_sha(WORKSPACE)} against `{base}` ({short_sha(base)})", "",
            "**Summary:** " + ("; ".join(summary) if summary else "no metrics files") + ".", ""]
    text = "\n".join(head + ["### Params", ""] + params + ["### Metrics", "", legend(noise), ""] + metrics
                     + (notes + [""] if notes else []) + ["### Plots", ""] + plots).rstrip("\n") + "\n"
    for name, data in files.items():
        with atomic_path(plots_dir / name) as tmp_path:
            tmp_path.write_bytes(data)
    if index is not None:
        with atomic_path(plots_dir / "index.html") as tmp_path:
            tmp_path.write_text(index, encoding="utf-8")
    return text
