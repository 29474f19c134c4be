"""`seqpipe report`: the plots and headline metrics as ONE self-contained HTML page that opens offline.

The plots come from DVC exactly as it defines them (`dvc plots show/diff --json`: its templates fill in
the data; image plots are PNG files), the metrics from `dvc metrics show/diff --json`. Vega, Vega-Lite
and vega-embed are inlined from the `vl-convert-python` package, so the browser draws every chart
itself (SVG renderer) and PNGs are data URIs: the page makes no network request.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import atomic_path

DEFAULT_OUTPUT = Path("report.html")
WORKSPACE = "workspace"


def dvc_json(*args: str) -> Any:
    """Run `dvc ARGS --json` with this Python's DVC in the current folder; its JSON, or a SeqpipeError
    carrying DVC's own error line."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUTF8": "1"}   # UTF-8 JSON in any locale
    cmd = [sys.executable, "-m", "dvc", *args, "--json"]
    proc = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", env=env)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR:")]
        why = errors[0] if errors else (lines[-1] if lines else f"exit code {proc.returncode}")
        raise SeqpipeError(f"dvc {' '.join(args[:2])}: {why}")
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise SeqpipeError(f"dvc {' '.join(args[:2])}: output is not JSON ({first_line(exc)})") from None


def collect_plots(revisions: list[str], image_dir: Path) -> tuple[dict[str, list[dict]], list[dict]]:
    """DVC's plots by id, in dvc.yaml order, and DVC's per-plot errors (a file missing in a revision).
    Image plots are written as PNGs into `image_dir`."""
    args = ["plots", "diff", *revisions] if revisions else ["plots", "show"]
    out = dvc_json(*args, "-o", str(image_dir))
    return out.get("data") or {}, out.get("errors") or []


def collect_metrics(revisions: list[str]) -> tuple[list[str], dict[str, dict[str, list]]]:
    """(column revisions, {metrics file: {metric: [value per revision]}}). No revision: the workspace;
    one: it and the workspace; more: each, each later one diffed against the first."""
    columns = (revisions if len(revisions) > 1 else [*revisions, WORKSPACE]) if revisions else [WORKSPACE]
    table: dict[str, dict[str, list]] = {}
    if not revisions:
        for rev_data in dvc_json("metrics", "show").values():
            for path, entry in (rev_data.get("data") or {}).items():
                for key, value in _flatten(entry.get("data") or {}).items():
                    table.setdefault(path, {})[key] = [value]
        return columns, table
    base = columns[0]
    for i, rev in enumerate(columns[1:], start=1):
        diff = dvc_json("metrics", "diff", "--all", base, *([] if rev == WORKSPACE else [rev]))
        for path, metrics in diff.items():
            for key, change in metrics.items():
                row = table.setdefault(path, {}).setdefault(key, [None] * len(columns))
                row[0], row[i] = change.get("old"), change.get("new")
    return columns, table


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def model_of(plot_id: str, models: list[str]) -> str:
    """The model a plot belongs to: `plots/<model>/...` or an id `<model>_...`; else 'other'."""
    parts = Path(plot_id).parts
    if len(parts) > 1 and parts[0] == "plots":
        return parts[1]
    matches = [m for m in models if plot_id == m or plot_id.startswith(m + "_")]
    return max(matches, key=len) if matches else "other"


def metrics_model(path: str) -> str:
    p = Path(path)
    return p.stem if p.parent.name == "metrics" else path


def plot_title(plot_id: str, entries: list[dict]) -> str:
    for entry in entries:
        title = (entry.get("content") or {}).get("title")
        if isinstance(title, dict):
            title = title.get("text")
        if isinstance(title, list):
            title = " ".join(map(str, title))
        if title:
            return str(title)
    return plot_id


def vega_bundle(specs: list[dict]) -> str:
    """vega + vega-lite + vega-embed as one script, Vega-Lite of the major version the specs declare."""
    import vl_convert

    majors = {m.group(1) for s in specs if (m := re.search(r"vega-lite/v(\d+)", str(s.get("$schema", ""))))}
    version = None
    if len(majors) == 1:
        major = majors.pop()
        same = [v for v in vl_convert.get_vegalite_versions() if v.split(".")[0] == major]
        version = max(same, key=lambda v: tuple(int(x) for x in v.split("."))) if same else None
    return vl_convert.javascript_bundle(vl_version=version)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def _change(old: Any, new: Any) -> str:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new)):
        return ""
    delta = new - old
    pct = f" ({delta / abs(old):+.2%})" if old else ""
    return f"{delta:+.4g}{pct}" if delta else "0"


def metrics_table(columns: list[str], rows: dict[str, list]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    head += "".join(f"<th>change {html.escape(c)}</th>" for c in columns[1:])
    body = []
    for key, values in sorted(rows.items()):
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in values)
        cells += "".join(f"<td>{_change(values[0], v)}</td>" for v in values[1:])
        body.append(f"<tr><th>{html.escape(key)}</th>{cells}</tr>")
    return f'<table class="metrics"><tr><th>metric</th>{head}</tr>{"".join(body)}</table>'


def _json_script(data: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(data).replace("</", "<\\/").replace("<!--", "<\\!--")


def _warning(err: dict) -> str:
    """One DVC plot error (a file or field missing in a revision) as a line of the page."""
    where = " ".join(str(err[k]) for k in ("name", "source") if err.get(k))
    text = f"{where + ' ' if where else ''}at {err.get('rev')}: DVC could not load it: {err.get('msg') or err.get('type')}"
    return f'<p class="warn">{html.escape(text)}</p>'


def _describe(rev: str) -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", f"{'HEAD' if rev == WORKSPACE else rev}^{{commit}}"],
                          capture_output=True, encoding="utf-8", errors="replace")
    sha = proc.stdout.strip() if proc.returncode == 0 else ""
    return f"{rev} (on {sha})" if rev == WORKSPACE and sha else f"{rev} ({sha})" if sha and sha != rev else rev


SCRIPT = """
document.querySelectorAll("img").forEach(img => {
  const mark = () => img.setAttribute("data-loaded", img.naturalWidth > 0 ? "1" : "0");
  img.complete ? mark() : (img.onload = img.onerror = mark);
});
const jobs = [...document.querySelectorAll(".vega-plot")].map(div =>
  vegaEmbed(div, JSON.parse(document.getElementById(div.dataset.spec).textContent),
            {renderer: "svg", actions: false})
    .then(() => div.setAttribute("data-status", "ok"))
    .catch(err => { div.setAttribute("data-status", "error");
                    div.textContent = "plot error: " + err; }));
Promise.allSettled(jobs).then(() => document.body.setAttribute("data-rendered", String(jobs.length)));
"""

STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
h1{margin-bottom:.2em} .meta{color:#555;margin:.1em 0}
section.model{border-top:2px solid #ccc;margin-top:2em}
figure{display:inline-block;vertical-align:top;margin:1em 1.5em 1em 0}
figcaption{font-weight:bold;margin-bottom:.4em} img{max-width:1200px;border:1px solid #ddd}
.revisions{display:flex;gap:1em} .revisions img{max-width:46vw}
table.metrics{border-collapse:collapse;margin:.5em 0} .metrics td,.metrics th{border:1px solid #ccc;padding:2px 8px}
.metrics td{text-align:right;font-family:monospace} .warn{color:#a40}
"""


def render(revisions: list[str], models: list[str] | None = None) -> tuple[str, dict[str, int]]:
    """The report page and its counts {models, plots, images, warnings} (DVC's plot errors, shown on the page)."""
    with tempfile.TemporaryDirectory(prefix="seqpipe-report-") as tmp:
        plots, errors = collect_plots(revisions, Path(tmp))
        if not plots:
            raise SeqpipeError("no plots: `dvc plots show` found none (dvc.yaml has no plots: section, "
                               "or no plot file exists yet)")
        columns, metrics = collect_metrics(revisions)
        in_plots = [Path(p).parts[1] for p in plots if len(Path(p).parts) > 2 and Path(p).parts[0] == "plots"]
        known = list(dict.fromkeys([metrics_model(p) for p in metrics] + in_plots))
        groups: dict[str, list[str]] = {}
        for plot_id in plots:
            groups.setdefault(model_of(plot_id, known), []).append(plot_id)
        for model in known:
            groups.setdefault(model, [])
        if models:
            unknown = [m for m in models if m not in groups]
            if unknown:
                raise SeqpipeError(f"--model {', '.join(unknown)}: no plots or metrics for it "
                                   f"(known: {', '.join(groups)})")
            groups = {m: groups[m] for m in models}
        parts, specs, counts = [], [], {"models": len(groups), "plots": 0, "images": 0, "warnings": 0}
        for model, plot_ids in groups.items():
            parts.append(f'<section class="model" id="model-{html.escape(model)}"><h2>{html.escape(model)}</h2>')
            for path, rows in metrics.items():
                if metrics_model(path) == model:
                    parts.append(f"<p class=meta>{html.escape(path)}</p>{metrics_table(columns, rows)}")
            for plot_id in plot_ids:
                entries = plots[plot_id]
                title = html.escape(plot_title(plot_id, entries))
                images = [e for e in entries if e.get("type") == "image"]
                parts.append('<div class="revisions">' if len(images) > 1 else "")
                for entry in entries:
                    revs = html.escape(" vs ".join(entry.get("revisions") or []))
                    if entry.get("type") == "vega":
                        specs.append(entry["content"])
                        n = len(specs) - 1
                        counts["plots"] += 1
                        parts.append(f'<figure><figcaption>{title}</figcaption><div class="vega-plot" '
                                     f'id="plot-{n}" data-plot="{html.escape(plot_id)}" data-spec="spec-{n}">'
                                     f'</div><script type="application/json" id="spec-{n}">'
                                     f"{_json_script(entry['content'])}</script></figure>")
                    elif entry.get("type") == "image":
                        data = base64.b64encode(Path(entry["url"]).read_bytes()).decode()
                        counts["images"] += 1
                        parts.append(f"<figure><figcaption>{title} — {revs}</figcaption>"
                                     f'<img alt="{title}" data-plot="{html.escape(plot_id)}" '
                                     f'src="data:image/png;base64,{data}"></figure>')
                parts.append("</div>" if len(images) > 1 else "")
                parts.extend(_warning(err) for err in errors if err.get("name") == plot_id)
                counts["warnings"] += sum(err.get("name") == plot_id for err in errors)
            parts.append("</section>")
    shown = " vs ".join(_describe(r) for r in columns)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    toc = " · ".join(f'<a href="#model-{html.escape(m)}">{html.escape(m)}</a>' for m in groups)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>seqpipe report: '
            f"{html.escape(shown)}</title><style>{STYLE}</style></head><body><h1>seqpipe report</h1>"
            f'<p class="meta">revisions: <b>{html.escape(shown)}</b></p><p class="meta">generated {when} by '
            f"<code>seqpipe report</code> from <code>dvc plots {'diff' if revisions else 'show'}</code> and "
            f"<code>dvc metrics {'diff' if revisions else 'show'}</code></p><p>{toc}</p>"
            f"{''.join(_warning(err) for err in errors if not err.get('name'))}{''.join(parts)}"
            f"<script>{vega_bundle(specs)}</script><script>{SCRIPT}</script></body></html>\n")
    return page, counts


def write(revisions: list[str], output: Path = DEFAULT_OUTPUT, models: list[str] | None = None) -> str:
    """Write the report to `output` atomically (nothing is written on an error); the line to print."""
    page, counts = render(revisions, models)
    with atomic_path(output) as tmp:
        tmp.write_text(page, encoding="utf-8")
    shown = ", ".join(f"{n} {what}{'' if n == 1 else 's'}" for what, n in
                      (("model", counts["models"]), ("chart", counts["plots"]), ("image", counts["images"]),
                       ("plot error", counts["warnings"])) if n or what != "plot error")
    return f"wrote {output}: {shown} ({', '.join(revisions) or WORKSPACE}{' vs workspace' if len(revisions) == 1 else ''})"
