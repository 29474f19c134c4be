"""The plots: our DVC templates (.dvc/plots/: colour by series, dash by revision, gaps break lines, confusion
counts and row shares as text), dvc.yaml's plot definitions (units on every axis, an lr plot per model), the
plot data the evaluate stages write (bandwidth's window, crop_ndvi's gaps, confusion tables) and the maps."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import yaml

from seqpipe import pipelines, plotting
from seqpipe.pipelines.bandwidth.evaluate import window_columns
from seqpipe.pipelines.crop_ndvi.evaluate import curve_columns
from tests.conftest import REPO, run

TEMPLATES = {"series", "epochs", "epochs_log", "confusion_rates"}


def plot_definitions() -> dict[str, dict]:
    """dvc.yaml's plots section: {plot id: definition}, image plots left out."""
    out: dict[str, dict] = {}
    for item in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]:
        if isinstance(item, dict):
            out.update(item)
    return out


def test_templates_are_json_with_dvc_anchors_and_every_plot_uses_one_with_units() -> None:
    for name in TEMPLATES:
        text = (REPO / ".dvc" / "plots" / f"{name}.json").read_text()
        json.loads(text)
        for anchor in ("DATA", "TITLE", "X", "Y", "X_LABEL", "Y_LABEL"):
            assert f"<DVC_METRIC_{anchor}>" in text, (name, anchor)
    defs = plot_definitions()
    for plot_id, d in defs.items():
        assert d.get("template") in TEMPLATES and d.get("x_label") and d.get("y_label"), plot_id
        assert d["x_label"] != d["x"] or d["template"] == "confusion_rates", plot_id   # a label, not the column
    for model in pipelines.names():
        assert defs[f"{model}_loss"]["x_label"] == "epoch" and defs[f"{model}_lr"]["x_label"] == "epoch"
        assert (defs[f"{model}_loss"]["template"], defs[f"{model}_lr"]["template"]) == ("epochs", "epochs_log")
        assert list(defs[f"{model}_lr"]["y"]) == [f"plots/{model}/train/plots/metrics/lr.tsv"]


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project with this repository's plots section, templates and committed plot files (one commit)."""
    repo = tmp_path_factory.mktemp("plots")
    for cmd in (["git", "init", "-q", "-b", "main"], ["dvc", "init", "-q"]):
        run(cmd, repo)
    shutil.copytree(REPO / "plots", repo / "plots")
    shutil.copytree(REPO / ".dvc" / "plots", repo / ".dvc" / "plots")
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "plots"]):
        run(cmd, repo)
    return repo


def dvc_plots(repo: Path, *args: str) -> dict[str, list[dict]]:
    out = json.loads(run(["dvc", "plots", *args, "--json"], repo).stdout)
    assert not out.get("errors"), out["errors"]
    return out["data"]


def find_marks(node: object, kind: str) -> list[dict]:
    """Every mark of type `kind` (with its layer's encoding) in a vega-lite spec, depth first."""
    found = []
    if isinstance(node, dict):
        mark = node.get("mark")
        if (mark if isinstance(mark, str) else (mark or {}).get("type")) == kind:
            found.append(node)
        for value in node.values():
            found += find_marks(value, kind)
    elif isinstance(node, list):
        for value in node:
            found += find_marks(value, kind)
    return found


def test_dvc_draws_every_plot_coloured_by_series_with_the_axis_units(plots_repo: Path) -> None:
    defs = plot_definitions()
    shown = dvc_plots(plots_repo, "show")
    assert set(defs) <= set(shown)
    for plot_id, d in defs.items():
        content = shown[plot_id][0]["content"]
        assert content["data"]["values"], plot_id
        if d["template"] == "confusion_rates":
            texts = {m["encoding"]["text"]["field"] for m in find_marks(content, "text")}
            assert texts == {"count_text", "rate_text"}, plot_id
            continue
        enc = content["encoding"]
        assert enc["color"]["field"] == "series" and enc["strokeDash"]["field"] == "rev", plot_id
        assert (enc["x"]["title"], enc["y"]["title"]) == (d["x_label"], d["y_label"]), plot_id
        assert enc["y"]["scale"] == ({"type": "log"} if d["template"] == "epochs_log" else {"zero": False})
        assert enc["x"]["field"] == ("epoch" if d["template"].startswith("epochs") else d["x"])


def test_a_diff_keeps_both_revisions_apart_by_dash(plots_repo: Path) -> None:
    loss = plots_repo / "plots/bandwidth/train/plots/metrics/train/loss.tsv"
    table = pd.read_csv(loss, sep="\t")
    table["loss"] *= 2
    table.to_csv(loss, sep="\t", index=False)
    try:
        diff = dvc_plots(plots_repo, "diff", "HEAD")
    finally:
        run(["git", "checkout", "--", "."], plots_repo)
    values = diff["bandwidth_loss"][0]["content"]["data"]["values"]
    assert {v["rev"] for v in values} == {"HEAD", "workspace"}
    dashes = diff["bandwidth_loss"][0]["content"]["encoding"]["strokeDash"]["scale"]["range"]
    assert dashes[0] == [1, 0] and all(d != [1, 0] for d in dashes[1:])   # the workspace solid, others dashed


def test_crop_ndvi_gaps_break_the_drawn_line(plots_repo: Path) -> None:
    vl_convert = pytest.importorskip("vl_convert")
    curves = pd.read_csv(plots_repo / "plots/crop_ndvi/eval/curves.csv")
    observed = curves["observed_ndvi"].notna().to_numpy()
    runs = int(observed[0]) + int(np.sum(observed[1:] & ~observed[:-1]))
    assert runs >= 2, "the committed curve has no gap to show"
    spec = dvc_plots(plots_repo, "show")["crop_ndvi_curve"][0]["content"]
    svg = vl_convert.vegalite_to_svg(spec)
    lines = re.findall(r'aria-roledescription="line mark"', svg)
    segments = re.findall(r'aria-label="[^"]*series: observed;[^"]*" role="graphics-symbol" '
                          r'aria-roledescription="line mark"', svg)
    assert lines and len(segments) == runs


def test_confusion_table_has_counts_and_row_rates() -> None:
    actual = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "b", "a"]
    table = pd.DataFrame(plotting.confusion_table(actual, predicted, ["a", "b", "c"]))
    assert list(table.columns) == ["actual", "predicted", "count", "rate"] and len(table) == 9
    cell = table.set_index(["actual", "predicted"])
    assert cell.loc[("a", "a"), "count"] == 2 and cell.loc[("a", "b"), "rate"] == pytest.approx(1 / 3)
    assert cell.loc[("c", "a"), "rate"] == 1.0 and cell.loc[("c", "c"), "count"] == 0
    assert table["count"].sum() == len(actual)
    assert table.groupby("actual")["rate"].sum().tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_crop_ndvi_curve_keeps_gaps_as_empty_cells(tmp_path: Path) -> None:
    nan = np.nan
    lines = {"observed": np.array([nan, 0.5, 0.6, nan, nan, 0.4, nan]),
             "BiLSTM": np.array([nan, 0.5, 0.6, nan, nan, 0.45, nan])}
    steps = np.arange(7)
    plotting.write_csv(tmp_path / "curves.csv", curve_columns(steps, steps * 5, lines))
    assert (tmp_path / "curves.csv").read_text().splitlines() == [
        "step,day,observed_ndvi,BiLSTM_ndvi", "1,5,0.5,0.5", "2,10,0.6,0.6", "3,15,,", "4,20,,", "5,25,0.4,0.45"]


def test_bandwidth_window_is_the_last_plot_steps() -> None:
    actual = np.arange(40, dtype=float).reshape(20, 2)
    candidates = {"model": actual + 1, "persistence": actual - 2}
    bounds = np.stack([np.stack([actual - 3, actual + 3])])   # one level, (levels, 2, rows, targets)
    columns = window_columns(["throughput_mbps", "rtt_ms"], actual, candidates, bounds, [0.8], steps=12)
    assert all(len(c) == 12 for c in columns.values())
    assert columns["lower_80_rtt_ms"].tolist() == (actual[8:, 1] - 3).tolist()
    assert columns["upper_80_throughput_mbps"].tolist() == (actual[8:, 0] + 3).tolist()
    assert columns["step"].tolist() == list(range(8, 20))
    assert columns["actual_rtt_ms"].tolist() == actual[8:, 1].tolist()
    assert set(columns["predicted_residual_throughput_mbps"]) == {1.0}
    assert set(columns["persistence_residual_rtt_ms"]) == {-2.0}
    every = window_columns(["throughput_mbps", "rtt_ms"], actual, candidates, bounds, [0.8], steps=500)
    assert len(every["step"]) == 20


def test_maps_draw_masked_pixels_grey_and_same_inputs_give_same_bytes(tmp_path: Path) -> None:
    image = np.linspace(0.0, 100.0, 64 * 64).reshape(64, 64)
    image[:, :32] = np.nan
    scale = plotting.MapScale("sea-ice concentration (%)", 0.0, 100.0, "Blues_r", "bottom")
    for name in ("a.png", "b.png"):
        plotting.map_panels(tmp_path / name, [("truth", image, scale)], ncols=1, title="m (model 0123456789abcdef)")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    pixels = matplotlib.image.imread(tmp_path / "a.png")[..., :3]
    grey = np.all(np.abs(pixels - float(plotting.MASKED_COLOUR)) < 0.01, axis=-1)
    assert grey.sum() > 32 * 32   # the masked half of the map, at least one screen pixel per array pixel
