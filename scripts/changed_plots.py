"""Read `dvc plots diff BASE --json -o DIR` on stdin; print a markdown table of the plots that differ.

A plot differs when its data points (vega plots) or its image bytes (image plots) at the revision
BASE are not those of the workspace. Used by pr_report.sh.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def by_revision(entries: list[dict]) -> dict[str, object]:
    """{revision: comparable content} of one plot."""
    out: dict[str, object] = {}
    for entry in entries:
        if entry["type"] == "image":
            out[entry["revisions"][0]] = Path(entry["url"]).read_bytes()
            continue
        points: dict[str, list[str]] = {}
        for point in entry["content"]["data"]["values"]:
            rest = {k: v for k, v in point.items() if k != "rev"}
            points.setdefault(point["rev"], []).append(json.dumps(rest, sort_keys=True))
        out.update({rev: sorted(p) for rev, p in points.items()})
    return out


def main(base: str) -> None:
    rows = []
    for plot, entries in json.load(sys.stdin)["data"].items():
        revs = by_revision(entries)
        new, old = revs.get("workspace"), revs.get(base)
        if new != old:
            change = "added" if old is None else "removed" if new is None else "changed"
            rows.append(f"| `{plot}` | {change} |")
    if not rows:
        print(f"No plot differs from `{base}`.")
        return
    print(f"{len(rows)} plot(s) differ from `{base}`:\n\n| plot | change |\n|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1])
