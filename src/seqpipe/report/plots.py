"""The plots of a report, exactly as DVC defines them: `dvc plots show/diff --json` (Vega-Lite specs that
its templates, ours in .dvc/plots/, filled with the data; image plots as PNG files), which of them a change
touched, and Vega-Lite rendered by vl-convert (the PNGs of the pull-request report, the page's scripts)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError
from seqpipe.report.dvc_json import dvc_json

# The fields DVC adds to each point of a multi-file or multi-column plot: together they name its series.
SERIES_FIELDS = ("filename", "field")
# a chart's PNG: one pixel per Vega pixel (a 520 x 280 plot with its legend: about 660 x 340)
PNG_SCALE = 1.0


def collect_plots(revisions: list[str], image_dir: Path) -> tuple[dict[str, list[dict]], list[dict]]:
    """DVC's plots by id, in dvc.yaml order, and DVC's per-plot errors (a file missing in a revision).
    Image plots are written as PNGs into `image_dir`, one per revision."""
    args = ["plots", "diff", *revisions] if revisions else ["plots", "show"]
    out = dvc_json(*args, "-o", str(image_dir))
    return out.get("data") or {}, out.get("errors") or []


def model_of(plot_id: str, models: list[str]) -> str:
    """The model a plot belongs to: `plots/<model>/...` or an id `<model>_...`; else 'other'."""
    parts = Path(plot_id).parts
    if len(parts) > 1 and parts[0] == "plots":
        return parts[1]
    matches = [m for m in models if plot_id == m or plot_id.startswith(m + "_")]
    return max(matches, key=len) if matches else "other"


def plot_title(plot_id: str, entries: list[dict]) -> str:
    """The title DVC filled into the plot's spec, else its id."""
    for entry in entries:
        title = (entry.get("content") or {}).get("title")
        if isinstance(title, dict):
            title = title.get("text")
        if isinstance(title, list):
            title = " ".join(map(str, title))
        if title:
            return str(title)
    return plot_id


def error_text(err: dict) -> str:
    """One DVC plot error (a file or field missing in a revision) as a sentence."""
    where = " ".join(str(err[k]) for k in ("name", "source") if err.get(k))
    why = err.get("msg") or err.get("type")
    return f"{where + ' ' if where else ''}at {err.get('rev')}: DVC could not load it: {why}"


# ---------------------------------------------------------------- what changed


def find_field(node: Any, axis: str) -> str | None:
    """The first `encoding.<axis>.field` in a Vega-Lite spec, searched depth first."""
    if isinstance(node, dict):
        enc = node.get("encoding", {})
        if isinstance(enc, dict) and isinstance(enc.get(axis), dict) and "field" in enc[axis]:
            return str(enc[axis]["field"])
        nested = [node.get(key) for key in ("spec", "layer")]
        return next(filter(None, (find_field(n, axis) for n in nested)), None)
    if isinstance(node, list):
        return next(filter(None, (find_field(item, axis) for item in node)), None)
    return None


def by_revision(entries: list[dict]) -> dict[str, Any]:
    """{revision: comparable content} of one plot: the points it draws (x, y and series, not the other
    columns of its file) or the image's bytes."""
    out: dict[str, Any] = {}
    for entry in entries:
        if entry.get("type") == "image":
            out[entry["revisions"][0]] = Path(entry["url"]).read_bytes()
            continue
        content = entry["content"]
        drawn = [f for f in (find_field(content, "x"), find_field(content, "y")) if f]
        points: dict[str, list[str]] = {}
        for point in content["data"]["values"]:
            kept = ({k: point.get(k) for k in (*drawn, *SERIES_FIELDS)} if len(drawn) == 2
                    else {k: v for k, v in point.items() if k != "rev"})
            points.setdefault(point["rev"], []).append(json.dumps(kept, sort_keys=True))
        out.update({rev: sorted(p) for rev, p in points.items()})
    return out


def changed_plots(plots: dict[str, list[dict]], old: str, new: str) -> list[tuple[str, str]]:
    """(plot id, 'added' / 'removed' / 'changed') of each plot whose drawn data or image differs
    between revisions `old` and `new`."""
    out = []
    for plot_id, entries in plots.items():
        revs = by_revision(entries)
        before, after = revs.get(old), revs.get(new)
        if before != after:
            out.append((plot_id, "added" if before is None else "removed" if after is None else "changed"))
    return out


def slug(plot_id: str) -> str:
    """A file name for a plot: `plots/a/b.png` -> `plots_a_b`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", plot_id.removesuffix(".png")).strip("_") or "plot"


# ---------------------------------------------------------------- Vega-Lite by vl-convert


def vegalite_version(specs: list[dict]) -> str | None:
    """The newest Vega-Lite vl-convert ships of the one major version the specs' `$schema` names."""
    import vl_convert

    majors = {m.group(1) for s in specs if (m := re.search(r"vega-lite/v(\d+)", str(s.get("$schema", ""))))}
    if len(majors) != 1:
        return None
    major = majors.pop()
    same = [v for v in vl_convert.get_vegalite_versions() if v.split(".")[0] == major]
    return max(same, key=lambda v: tuple(int(x) for x in v.split("."))) if same else None


def vega_bundle(specs: list[dict]) -> str:
    """vega + vega-lite + vega-embed as one script (for a page that draws the specs itself, offline)."""
    import vl_convert

    # the stub marks `snippet` required; it is optional (default: vegaEmbed, vegaLite and vega on window)
    return vl_convert.javascript_bundle(vl_version=vegalite_version(specs))  # type: ignore[call-arg]


def to_png(plot_id: str, spec: dict, scale: float = PNG_SCALE) -> bytes:
    """DVC's filled Vega-Lite spec of one plot drawn as PNG bytes (no data is fetched from anywhere: DVC
    inlines it)."""
    import vl_convert

    try:
        return bytes(vl_convert.vegalite_to_png(spec, vl_version=vegalite_version([spec]), scale=scale,
                                                allowed_base_urls=[]))
    except ValueError as exc:   # vl-convert's message: "... conversion failed:" and the reason below it
        why = " ".join(str(exc).split("\n")[:2]).strip()[:300]
        raise SeqpipeError(f"plot {plot_id}: vl-convert cannot render its Vega-Lite spec ({why})") from None
