"""`seqpipe report`: the plots and headline metrics as ONE self-contained HTML page that opens offline.

The plots come from DVC exactly as it defines them (`dvc plots show/diff --json`: its templates fill in
the data; image plots are PNG files), the metrics from `dvc metrics show/diff --json`, each change with
its verdict (better / worse by the metric's direction). Vega, Vega-Lite and vega-embed are inlined from
the `vl-convert-python` package, so the browser draws every chart itself (SVG renderer) and PNGs are
data URIs: the page makes no network request.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_path, output_target
from seqpipe.report.collect import Collected, collect
from seqpipe.report.dvc_json import WORKSPACE, describe
from seqpipe.report.metrics import metrics_model, own_directions, pct, verdict
from seqpipe.report.plots import error_text, plot_title, vega_bundle

DEFAULT_OUTPUT = Path("report.html")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def _change(key: str, old: Any, new: Any, own: Mapping[str, int]) -> str:
    """The change of one metric: delta, relative delta and its verdict (better, worse, same ...)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new)):
        return ""
    delta = new - old
    rel = f" ({pct(old, new)})" if old else ""
    said = verdict(key, old, new, own=own)
    shown = f"{delta:+.4g}{rel}" if delta else "0"
    return f'{shown} <span class="{said}">{said}</span>' if said in ("better", "worse") else shown


def metrics_table(columns: list[str], rows: dict[str, list], own: Mapping[str, int]) -> str:
    """One metrics file's table; `own`: its model's own metric directions."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    head += "".join(f"<th>change {html.escape(c)}</th>" for c in columns[1:])
    body = []
    for key, values in sorted(rows.items()):
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in values)
        cells += "".join(f"<td>{_change(key, values[0], v, own)}</td>" for v in values[1:])
        body.append(f"<tr><th>{html.escape(key)}</th>{cells}</tr>")
    return f'<table class="metrics"><tr><th>metric</th>{head}</tr>{"".join(body)}</table>'


def _json_script(data: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(data).replace("</", "<\\/").replace("<!--", "<\\!--")


def _warn(text: str) -> str:
    return f'<p class="warn">{html.escape(text)}</p>'


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
table.metrics{border-collapse:collapse;margin:.5em 0}
.metrics td,.metrics th{border:1px solid #ccc;padding:2px 8px}
.metrics td{text-align:right;font-family:monospace}
.warn,.note{color:#a40} .better{color:#070} .worse{color:#b00}
"""


def render(c: Collected) -> tuple[str, dict[str, int]]:
    """The page of what `collect` gathered, and its counts {models, plots, images, warnings} (warnings:
    DVC's plot errors, each a line on the page). The image plots' files must still exist."""
    if not c.plots:
        raise SeqpipeError("no plots: `dvc plots show` found none (dvc.yaml has no plots: section, "
                           "or no plot file exists yet)")
    parts: list[str] = []
    specs: list[dict] = []
    counts = {"models": len(c.groups), "plots": 0, "images": 0, "warnings": 0}
    for model, plot_ids in c.groups.items():
        parts.append(f'<section class="model" id="model-{html.escape(model)}"><h2>{html.escape(model)}</h2>')
        for path, rows in c.metrics.files.items():
            if metrics_model(path) == model:
                table = metrics_table(c.columns, rows, own_directions(path))
                parts.append(f"<p class=meta>{html.escape(path)}</p>{table}")
        for plot_id in plot_ids:
            entries = c.plots[plot_id]
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
            mine = [err for err in c.errors if err.get("name") == plot_id]
            parts.extend(_warn(error_text(err)) for err in mine)
            counts["warnings"] += len(mine)
        parts.append("</section>")
    shown = " vs ".join(describe(r) for r in c.columns)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    toc = " · ".join(f'<a href="#model-{html.escape(m)}">{html.escape(m)}</a>' for m in c.groups)
    verb = "diff" if c.revisions else "show"
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in c.metrics.notes)
    notes += "".join(_warn(error_text(err)) for err in c.errors if not err.get("name"))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>seqpipe report: '
            f"{html.escape(shown)}</title><style>{STYLE}</style></head><body><h1>seqpipe report</h1>"
            f'<p class="meta">revisions: <b>{html.escape(shown)}</b></p><p class="meta">generated {when} by '
            f"<code>seqpipe report</code> from <code>dvc plots {verb}</code> and <code>dvc metrics {verb}"
            f"</code></p><p>{toc}</p>{notes}{''.join(parts)}<script>{vega_bundle(specs)}</script>"
            f"<script>{SCRIPT}</script></body></html>\n")
    return page, counts


def summary(counts: dict[str, int]) -> str:
    """'6 models, 40 charts, 9 images' (and the plot errors, if any)."""
    return ", ".join(f"{n} {what}{'' if n == 1 else 's'}" for what, n in
                     (("model", counts["models"]), ("chart", counts["plots"]), ("image", counts["images"]),
                      ("plot error", counts["warnings"])) if n or what != "plot error")


def write(revisions: list[str], output: str | Path = DEFAULT_OUTPUT, models: list[str] | None = None) -> str:
    """Write the report to `output` atomically (nothing is written on an error; a FIFO or a device is
    written into, see io.atomic_path); the line to print."""
    output_target(output)   # a folder (also 'out/'), a socket: refused before the report is rendered
    with tempfile.TemporaryDirectory(prefix="seqpipe-report-") as tmp:
        page, counts = render(collect(revisions, Path(tmp), models))
    with atomic_path(output) as tmp_path:
        tmp_path.write_text(page, encoding="utf-8")
    against = " vs workspace" if len(revisions) == 1 else ""
    return f"wrote {output}: {summary(counts)} ({', '.join(revisions) or WORKSPACE}{against})"
