"""`seqpipe report`: one HTML page that headless Chromium draws whole with every network request failing.

The committed plots/ and metrics/ are real outputs, so a repository copy needs no training. Chromium runs
with a proxy to nowhere and every host name unresolvable, and its net log must show no request from the
page; every chart container must then hold an SVG with marks and every image must have loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import error_lines, run
from tests.test_architecture import LOADED

OFFLINE = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKS = {"path", "rect", "text", "line", "circle"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def chromium() -> str:
    """Debian's chromium (`make test` installs it when missing); skipped without it, except under CI."""
    found = os.environ.get("SEQPIPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium not installed: `make test` installs it with apt-get")
        pytest.skip("chromium not installed (`apt-get install chromium`, or run `make test` as root)")
    return found


def browse(page: Path, tmp: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran (virtual time: no waiting on a real clock), and the http(s)
    URLs the page asked for (from Chromium's net log; the browser's own background requests are left out)."""
    netlog = tmp / "netlog.json"
    cmd = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *OFFLINE,
           "--virtual-time-budget=20000", f"--user-data-dir={tmp / 'profile'}", f"--log-net-log={netlog}",
           "--dump-dom", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if screenshot is not None:  # SEQPIPE_REPORT_SCREENSHOTS=folder: look at the pages too
        subprocess.run([*cmd[:-2], f"--screenshot={screenshot}", "--window-size=1400,4000", cmd[-1]],
                       capture_output=True, timeout=120, check=True)
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    asked = [e["params"]["url"] for e in log["events"] if e["type"] == start
             and e["params"].get("network_isolation_key", "").startswith("file://")]
    return proc.stdout, asked


class Page(HTMLParser):
    """Per chart container: its status and the count of each element inside it; every <img>'s attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict] = []
        self.images: list[dict] = []
        self.body: dict = {}
        self._stack: list[dict | None] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        if tag == "img":
            self.images.append(attrs)
        for chart in filter(None, self._stack):
            chart["tags"][tag] = chart["tags"].get(tag, 0) + 1
        if tag in VOID:
            return
        chart = None
        if tag == "div" and "vega-plot" in (attrs.get("class") or "").split():
            chart = {"plot": attrs.get("data-plot"), "status": attrs.get("data-status"), "tags": {}}
            self.charts.append(chart)
        self._stack.append(chart)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self._stack:
            self._stack.pop()


def without_scripts(text: str) -> str:
    """The page with the bodies of its <script> elements emptied (the Vega bundle holds HTML-like strings)."""
    return re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", text, flags=re.S | re.I)


def dvc_plots(repo: Path, *revisions: str) -> tuple[list[tuple[str, str]], list[str]]:
    """What DVC itself renders, the oracle: (plot id, type) per entry of `dvc plots show/diff --json`, and
    the plot of each error it reports (a file or field another change has not produced yet)."""
    args = ["plots", "diff", *revisions] if revisions else ["plots", "show"]
    out = json.loads(run(["dvc", *args, "--json", "-o", str(repo / ".dvc" / "tmp" / "oracle")], repo).stdout)
    entries = [(plot_id, entry["type"]) for plot_id, items in out.get("data", {}).items() for entry in items]
    return entries, [str(err.get("name")) for err in out.get("errors") or []]


def check_drawn(html_file: Path, tmp: Path, charts: int, images: int, warnings: int, name: str) -> Page:
    """Static checks (nothing but data: URIs), then Chromium: every chart drawn, every image loaded, no
    request, no error text but one line per plot error DVC reported."""
    tags = without_scripts(html_file.read_text())
    assert not re.search(r"<(script|img|iframe|source|embed)\b[^>]*\bsrc=(?![\"']?data:)", tags, re.I)
    assert not re.search(r"<link\b|<object\b|@import|url\(\s*[\"']?(https?:)?//", tags, re.I)
    shots = os.environ.get("SEQPIPE_REPORT_SCREENSHOTS")
    dom, asked = browse(html_file, tmp, Path(shots).resolve() / f"{name}.png" if shots else None)
    assert asked == [], f"the page made network requests: {asked}"
    page = Page()
    page.feed(dom)
    assert len(page.charts) == charts > 0 and len(page.images) == images > 0
    assert page.body.get("data-rendered") == str(charts), "not every chart settled"
    for chart in page.charts:
        marks = sum(n for tag, n in chart["tags"].items() if tag in MARKS)
        assert chart["status"] == "ok" and chart["tags"].get("svg") and marks > 0, chart
    assert all(img.get("data-loaded") == "1" for img in page.images), [i.get("data-plot") for i in page.images]
    shown = without_scripts(dom)
    assert "plot error" not in shown and shown.count('class="warn"') == warnings
    return page


def counts(line: str) -> tuple[int, int]:
    found = re.search(r"(\d+) charts?, (\d+) images?", line)
    assert found, line
    return int(found.group(1)), int(found.group(2))


def test_report_of_the_workspace_draws_every_plot_offline(repo_copy: Path, tmp_path: Path) -> None:
    proc = run([sys.executable, "-c", LOADED, "report"], repo_copy)   # `seqpipe report`, then the modules it loaded
    assert "torch" not in json.loads(proc.stdout.splitlines()[-1]), "seqpipe report imported torch"
    out = repo_copy / "report.html"
    charts, images = counts(proc.stdout)
    entries, errors = dvc_plots(repo_copy)
    assert (charts, images) == (sum(t == "vega" for _, t in entries), sum(t == "image" for _, t in entries))
    page = check_drawn(out, tmp_path, charts, images, len(errors), "workspace")
    text = out.read_text()
    for metrics in sorted((repo_copy / "metrics").glob("*.json")):
        assert f'id="model-{metrics.stem}"' in text
        assert all(f"{value:.6g}" in text for value in json.loads(metrics.read_text())["test"].values())
    assert {c["plot"] for c in page.charts} >= {"bandwidth_loss", "ice_type_confusion"}
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo_copy, capture_output=True, text=True
                          ).stdout == "", "report.html must be git-ignored"


def test_report_of_two_revisions_compares_plots_and_metrics(repo_copy: Path, tmp_path: Path) -> None:
    metrics = repo_copy / "metrics" / "bandwidth.json"
    data = json.loads(metrics.read_text())
    old_rmse = data["test"]["rmse"]
    data["test"]["rmse"] = old_rmse * 1.5
    metrics.write_text(json.dumps(data, indent=2) + "\n")
    loss = repo_copy / "plots" / "bandwidth" / "train" / "plots" / "metrics" / "train" / "loss.tsv"
    lines = loss.read_text().splitlines()
    step, value = lines[1].split("\t")[:2]
    loss.write_text("\n".join([lines[0], f"{step}\t{float(value) * 2}", *lines[2:]]) + "\n")
    subprocess.run(["git", "commit", "-qam", "worse bandwidth"], cwd=repo_copy, check=True)

    proc = run(["seqpipe", "report", "HEAD~1", "HEAD", "--model", "bandwidth", "--output", "out/diff.html"],
               repo_copy)
    charts, images = counts(proc.stdout)
    entries, errors = dvc_plots(repo_copy, "HEAD~1", "HEAD")
    mine = ("bandwidth_", "plots/bandwidth/")
    ours = [(plot_id, t) for plot_id, t in entries if plot_id.startswith(mine)]
    assert (charts, images) == (sum(t == "vega" for _, t in ours), sum(t == "image" for _, t in ours))
    assert images == 2 * sum(p.endswith(".png") for p in {plot_id for plot_id, _ in ours})  # once per revision
    html_file = repo_copy / "out" / "diff.html"
    warnings = sum(name.startswith(mine) for name in errors)
    page = check_drawn(html_file, tmp_path, charts, images, warnings, "diff")
    text = html_file.read_text()
    assert "HEAD~1" in text and "<th>change HEAD</th>" in text
    assert f"{old_rmse:.6g}" in text and f"{old_rmse * 1.5:.6g}" in text and "(+50.00%)" in text
    assert 'id="model-freq_filter"' not in text
    assert {c["plot"] for c in page.charts} == {plot_id for plot_id, t in ours if t == "vega"} >= {"bandwidth_loss"}


def test_report_errors_are_one_line_and_write_nothing(repo_copy: Path) -> None:
    out = repo_copy / "report.html"
    out.write_text("earlier report\n")
    for args, says in ((["no-such-rev"], "unknown Git revision 'no-such-rev'"),
                       (["--model", "nope"], "--model nope: no plots or metrics for it")):
        proc = run(["seqpipe", "report", *args], repo_copy, check=False)
        assert proc.returncode == 1 and len(error_lines(proc.stderr)) == 1, proc.stderr
        assert says in proc.stderr
        assert out.read_text() == "earlier report\n"
    dvc_yaml = repo_copy / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().split("\nplots:\n")[0] + "\n")
    proc = run(["seqpipe", "report", "--output", "none.html"], repo_copy, check=False)
    assert proc.returncode == 1 and error_lines(proc.stderr) == [
        "seqpipe: error: no plots: `dvc plots show` found none (dvc.yaml has no plots: section, or no plot "
        "file exists yet)"], proc.stderr
    assert not (repo_copy / "none.html").exists() and not list(repo_copy.glob(".none.html.*"))


def test_the_network_check_sees_a_page_that_loads_from_a_cdn(tmp_path: Path) -> None:
    """The control: a page that loads Vega from a CDN is caught (the request is in the net log)."""
    page = tmp_path / "cdn.html"
    page.write_text('<html><body><script src="https://cdn.jsdelivr.net/npm/vega@5"></script></body></html>')
    _, asked = browse(page, tmp_path)
    assert asked == ["https://cdn.jsdelivr.net/npm/vega@5"]
