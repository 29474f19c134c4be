"""scripts/pr_report.sh (`seqpipe pr-report`) with the real git and dvc: on a copy of this repository (its
committed headline metrics and plots, one metric and one plot changed on the PR side) and on a small DVC
project of its own."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import vl_convert
import yaml

from seqpipe.report.plots import PNG_SCALE
from tests.conftest import REPO, error_lines, run

SCRIPT = REPO / "scripts" / "pr_report.sh"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

DVC_YAML = {
    "metrics": ["metrics.json"],
    "plots": [
        {"loss": {"x": "step", "y": {"curve.csv": "loss"}}},
        {"reference": {"x": "step", "y": {"reference.csv": "value"}}},
        "map.png",
    ],
}


def png(gray: int) -> bytes:
    """A real 1 x 1 grayscale PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes([0, gray])))
            + chunk(b"IEND", b""))


def md_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|--") and not line.startswith("|---")]


def metric_rows(report: str, model: str) -> dict[str, dict[str, str]]:
    """The metrics table of one model's section, {metric: {column: cell}}."""
    start = report.index(f"#### `{model}`")
    ends = [i for i in (report.find("\n#### ", start), report.find("\n### ", start)) if i != -1]
    header, *body = md_rows(report[start: min(ends, default=len(report))])
    return {row[0].strip("`"): dict(zip(header, row, strict=True)) for row in body}


def images(report: str) -> list[tuple[str, str]]:
    """(alt text, path) of each markdown image."""
    out = []
    for line in report.splitlines():
        if line.startswith("!["):
            alt, _, rest = line[2:].partition("](")
            out.append((alt, rest.rstrip(")")))
    return out


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- this repository's metrics and plots


@pytest.fixture(scope="module")
def pr_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """This repository's tracked files in a fresh git repo (branch main), then on the workspace: bandwidth's
    test RMSE 3% higher (worse, and above ridge's) and MAE 2% lower (better), ice_change's F1 0.2% higher
    (within the default noise), one bandwidth CSV series and ice_change's map image changed, one param."""
    repo = tmp_path_factory.mktemp("pr") / "repo"
    files = run(["git", "ls-files"], REPO).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, repo / rel)
    def ridge_between(m: dict) -> None:  # at base the model beats ridge by 1.5% RMSE and 1% MAE, whatever was trained
        m["baselines"]["ridge"].update(rmse=m["test"]["rmse"] * 1.015, mae=m["test"]["mae"] * 1.01)
    edit_json(repo / "metrics/bandwidth.json", ridge_between)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        run(cmd, repo)
    base = {m: json.loads((repo / "metrics" / f"{m}.json").read_text()) for m in ("bandwidth", "ice_change")}

    def bandwidth(m: dict) -> None:
        m["test"]["rmse"] *= 1.03
        m["test"]["mae"] *= 0.98
    edit_json(repo / "metrics/bandwidth.json", bandwidth)
    edit_json(repo / "metrics/ice_change.json", lambda m: m["test"].update(f1=m["test"]["f1"] * 1.002))
    csv = repo / "plots/bandwidth/eval/predictions.csv"
    lines = csv.read_text().splitlines()
    column = lines[0].split(",").index("predicted_throughput_mbps")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[column] = f"{float(row[column]) + 25:.6g}"
    csv.write_text("\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n")
    shutil.copy(repo / "plots/ice_forecast/eval/forecast_vs_truth.png", repo / "plots/ice_change/eval/change_maps.png")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"]["bandwidth"]["train"]["lr"] = 0.0003
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo, base


@pytest.fixture(scope="module")
def pr_report(pr_copy: tuple[Path, dict]) -> str:
    return run([str(SCRIPT), "main", "report_plots"], pr_copy[0]).stdout


def test_changed_model_has_deltas_and_verdicts_by_direction(pr_copy: tuple[Path, dict], pr_report: str) -> None:
    repo, base = pr_copy
    rows = metric_rows(pr_report, "bandwidth")
    old = base["bandwidth"]["test"]
    rmse, mae = rows["rmse"], rows["mae"]
    assert rmse["base"] == f"{old['rmse']:.4g}" and rmse["PR"] == f"{old['rmse'] * 1.03:.4g}"
    assert rmse["delta"] == f"{old['rmse'] * 0.03:+.4g}" and rmse["relative"] == "+3.00%"
    assert rmse["verdict"] == "**worse**"                      # lower is better
    assert mae["relative"] == "-2.00%" and mae["verdict"] == "better"
    # the baselines beside it: their values, and whether the model still beats them
    ridge = base["bandwidth"]["baselines"]["ridge"]
    persistence = base["bandwidth"]["baselines"]["persistence"]
    assert rmse["ridge"] == f"{ridge['rmse']:.4g}" and mae["persistence"] == f"{persistence['mae']:.4g}"
    assert old["rmse"] < ridge["rmse"] < old["rmse"] * 1.03          # it beat ridge at base, not in the PR
    assert rmse["beats baselines"] == "**now loses to ridge**" and mae["beats baselines"] == "all"
    assert "#### `bandwidth`: mixed" in pr_report
    assert ("**Summary:** `bandwidth` **mixed** (mae -2.00%, rmse +3.00%); `ice_change` **same**; 4 unchanged."
            in pr_report)
    lr = yaml.safe_load((REPO / "params.yaml").read_text())["models"]["bandwidth"]["train"]["lr"]
    assert ["`models.bandwidth.train.lr`", str(lr), "0.0003"] in md_rows(pr_report)


def test_change_within_the_noise_is_same_and_beyond_it_better(pr_copy: tuple[Path, dict], pr_report: str) -> None:
    f1 = metric_rows(pr_report, "ice_change")["f1"]
    assert f1["relative"] == "+0.20%" and f1["verdict"] == "same"      # 0.2% < the default 0.5%
    strict = run([str(SCRIPT), "--noise", "0.001", "--model", "ice_change", "main", "strict_plots"],
                 pr_copy[0]).stdout
    assert metric_rows(strict, "ice_change")["f1"]["verdict"] == "better"   # higher is better
    assert "more than 0.1% of the base value" in strict
    assert "bandwidth" not in strict.split("### Params")[1].split("### Metrics")[1]   # --model: its own alone


def test_untouched_models_are_one_line_each(pr_report: str) -> None:
    for model in ("freq_filter", "crop_ndvi", "ice_type", "ice_forecast"):
        mentions = [line for line in pr_report.splitlines() if f"`{model}`" in line]
        assert len(mentions) == 1 and mentions[0].startswith(f"- `{model}`: unchanged ("), mentions
        assert f"#### `{model}`" not in pr_report


def test_changed_plots_are_dvcs_own_charts_and_images_as_pngs(pr_copy: tuple[Path, dict], pr_report: str) -> None:
    """A changed chart is DVC's filled Vega-Lite spec (our templates, both revisions) rendered by vl-convert,
    byte for byte; a changed image plot is its two PNGs as they are, BASE first."""
    repo = pr_copy[0]
    shown = images(pr_report)
    maps = "report_plots/diff_plots_ice_change_eval_change_maps"
    assert [path for _, path in shown] == ["report_plots/diff_bandwidth_throughput.png", f"{maps}_base.png",
                                           f"{maps}_pr.png"], pr_report
    assert shown[0][0] == "bandwidth: throughput, actual vs predicted (80% interval) vs persistence (test)"
    assert "2 plot(s) differ from `main`" in pr_report
    for _, path in shown:
        assert (repo / path).read_bytes().startswith(PNG_MAGIC) and (repo / path).stat().st_size > 5000
    spec = json.loads(run(["dvc", "plots", "diff", "main", "--json", "-o", str(repo / ".dvc" / "tmp" / "oracle")],
                          repo).stdout)["data"]["bandwidth_throughput"][0]["content"]
    assert {p["rev"] for p in spec["data"]["values"]} == {"main", "workspace"}
    assert (repo / shown[0][1]).read_bytes() == vl_convert.vegalite_to_png(spec, scale=PNG_SCALE)
    committed = subprocess.run(["git", "show", "main:plots/ice_change/eval/change_maps.png"], cwd=repo,
                               capture_output=True, check=True).stdout
    assert (repo / f"{maps}_base.png").read_bytes() == committed
    assert (repo / f"{maps}_pr.png").read_bytes() == (repo / "plots/ice_change/eval/change_maps.png").read_bytes()
    index = (repo / "report_plots" / "index.html").read_text(encoding="utf-8")   # every plot, for the artifact
    assert "<h1>seqpipe report</h1>" in index and "main (" in index              # `seqpipe report main`: offline
    assert not re.search(r"<script[^>]*\bsrc=", index) and 'id="model-bandwidth"' in index


# ---------------------------------------------------------------- a small project of its own


def commit_run(repo: Path, lr: float, losses: list[float], gray: int, message: str) -> None:
    """One 'training run': its params, metrics, loss curve and image, committed."""
    (repo / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": lr, "epochs": len(losses)}}))
    (repo / "metrics.json").write_text(json.dumps({"loss": losses[-1], "epochs_run": len(losses)}))
    (repo / "curve.csv").write_text("step,loss\n" + "".join(f"{i},{v}\n" for i, v in enumerate(losses)))
    (repo / "map.png").write_bytes(png(gray))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


@pytest.fixture
def two_commits(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (repo / "reference.csv").write_text("step,value\n0,1.0\n1,0.5\n")
    commit_run(repo, lr=0.01, losses=[0.5, 0.25], gray=10, message="base")
    run(["git", "checkout", "-qb", "feature"], repo)
    commit_run(repo, lr=0.03, losses=[0.5, 0.25, 0.125], gray=200, message="higher lr, one more epoch")
    return repo


def test_any_dvc_project_flat_metrics_and_image_plots(two_commits: Path) -> None:
    repo = two_commits
    report = run([str(SCRIPT), "main", "plots_out"], repo).stdout
    rows = md_rows(report)
    assert ["`train.epochs`", "2", "3"] in rows and ["`train.lr`", "0.01", "0.03"] in rows, report
    metrics = metric_rows(report, "metrics.json")              # a flat file: each key is a metric of its own
    assert [metrics["loss"][c] for c in ("base", "PR", "delta", "relative", "verdict")] == \
        ["0.25", "0.125", "-0.125", "-50.00%", "better"]
    assert metrics["epochs_run"]["verdict"] == "changed"       # no direction: changed, neither better nor worse
    assert [path for _, path in images(report)] == ["plots_out/diff_loss.png", "plots_out/diff_map_base.png",
                                                    "plots_out/diff_map_pr.png"]     # DVC's default templates too
    assert all((repo / path).read_bytes().startswith(PNG_MAGIC) for _, path in images(report))
    assert (repo / "plots_out" / "diff_map_pr.png").read_bytes() == png(200)       # the image as it is
    assert (repo / "plots_out" / "index.html").exists()
    assert report.startswith("## ") and "`main`" in report.splitlines()[0]

    # `seqpipe pr-report` itself (the script is one `exec` of it): it loads neither matplotlib nor torch
    assert [line for line in SCRIPT.read_text().splitlines() if line.startswith("exec ")] == \
        ['exec "$seqpipe" pr-report "$@"'] and sorted(p.name for p in SCRIPT.parent.iterdir()) == ["pr_report.sh"]
    loaded = ("import sys\nfrom seqpipe.cli import main\ncode = main(sys.argv[1:])\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'torch'}))\nsys.exit(code)\n")
    same, modules = run([sys.executable, "-c", loaded, "pr-report", "feature"], repo).stdout.rsplit("\n", 2)[:2]
    assert modules == "[]"
    assert "No params changed." in same and "- `metrics.json`: unchanged (epochs_run 3, loss 0.125)" in same
    assert "**Summary:** 1 unchanged." in same
    assert "No plot differs from `feature`." in same and not images(same)
    assert (repo / "dvc_plots" / "index.html").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["no-such-branch"], "BASE 'no-such-branch' is not a commit in this repository"),
    ([], "the following arguments are required: BASE"), (["a", "b", "c"], "unrecognized arguments: c"),
    (["--noise", "lots", "main"], "argument --noise: 'lots' is not a fraction in [0, 1)"),
    (["--noise", "1.5", "main"], "argument --noise: '1.5' is not a fraction"),
    (["--bogus", "main"], "unrecognized arguments: --bogus"), (["main", "--noise"], "argument --noise: expected one"),
    (["main", "params.yaml"], "PLOTS_DIR params.yaml: exists and is not a folder")])
def test_bad_arguments_are_one_clear_line(two_commits: Path, args: list[str], expected: str) -> None:
    """Exit code 2, one `seqpipe: error:` line (argparse's usage above it), nothing written."""
    proc = run([str(SCRIPT), *args], two_commits, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    other = [line for line in proc.stderr.splitlines() if not line.startswith(("usage: seqpipe", " "))]
    assert other == error_lines(proc.stderr) and len(other) == 1, proc.stderr
    assert expected in other[0], proc.stderr
    assert not (two_commits / "dvc_plots").exists()


def test_a_metrics_file_dvc_cannot_read_is_one_clear_line(two_commits: Path) -> None:
    (two_commits / "metrics.json").write_text("{not json")
    proc = run([str(SCRIPT), "main"], two_commits, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and not (two_commits / "dvc_plots").exists()
    assert error_lines(proc.stderr) == [
        "seqpipe: error: metrics.json: DVC cannot read it (JSON file structure is corrupted)"], proc.stderr


# ---------------------------------------------------------------- the workflows that run it


def workflow(name: str) -> dict:
    data = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))                # YAML 1.1 reads the key `on` as true
    return data


def test_pr_workflow_caches_pushes_and_posts_the_report() -> None:
    pr = workflow("pr.yml")
    steps = pr["jobs"]["report"]["steps"]
    text = "\n".join(json.dumps(s) for s in steps)
    cached = [s["with"]["path"] for s in steps if s.get("uses", "").startswith("actions/cache@")]
    assert ".venv" in cached and ".dvc/cache" in cached
    assert "hashFiles('dvc.lock')" in text and "hashFiles('requirements.lock'" in text
    assert "dvc push" in text and "scripts/pr_report.sh" in text
    post = next(s for s in steps if s.get("uses", "").startswith("actions/github-script@"))
    assert "updateComment" in post["with"]["script"] and "comment.md" in post["with"]["script"]


def test_pr_workflow_sends_nothing_outside_github_unless_the_repository_opts_in(tmp_path: Path) -> None:
    """Telemetry off for every tool; the comment points at the artifact instead of uploading the images;
    CML (which uploads them to its public asset host) only with PR_REPORT_IMAGES=cml."""
    pr = workflow("pr.yml")
    assert pr["env"]["DVC_NO_ANALYTICS"] and pr["env"]["ITERATIVE_DO_NOT_TRACK"]
    assert workflow("test.yml")["env"]["DVC_NO_ANALYTICS"]
    steps = pr["jobs"]["report"]["steps"]
    (cml,) = [s for s in steps if "@dvcorg/cml" in s.get("run", "")]
    assert "vars.PR_REPORT_IMAGES == 'cml'" in cml["if"]
    github_post = next(s for s in steps if s.get("uses", "").startswith("actions/github-script@"))
    assert "vars.PR_REPORT_IMAGES != 'cml'" in github_post["if"]
    # the step that makes comment.md, run on a report with an image: the image becomes a pointer
    report = next(s for s in steps if s.get("name") == "Report")
    script = report["run"].split("python - <<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    (tmp_path / "report.md").write_text("## bandwidth\n![loss curve](dvc_plots/diff_loss.png)\n", encoding="utf-8")
    for images, embedded in (("", False), ("cml", True)):
        env = {**os.environ, "IMAGES": images}
        subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True)
        comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
        assert ("![loss curve](dvc_plots/diff_loss.png)" in comment) is embedded, comment
        assert embedded or "`dvc_plots/diff_loss.png` in the `dvc-plots` artifact" in comment


def test_test_workflow_runs_make_test_on_every_push_and_pull_request() -> None:
    test = workflow("test.yml")
    assert {"push", "pull_request"} <= set(test["on"])
    steps = test["jobs"]["test"]["steps"]
    assert any(s.get("with", {}).get("python-version") == "3.11" for s in steps)
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "make test" in runs
    assert any("download.pytorch.org/whl/cpu" in json.dumps(s.get("env", {})) for s in steps)
