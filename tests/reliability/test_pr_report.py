"""scripts/pr_report.sh on a small real DVC project in a temp git repo with two commits."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run

SCRIPT = REPO / "scripts" / "pr_report.sh"

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
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes([0, gray])))
            + chunk(b"IEND", b""))


def commit_run(repo: Path, lr: float, losses: list[float], gray: int, message: str) -> None:
    """One 'training run': its params, metrics, loss curve and image, committed."""
    (repo / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": lr, "epochs": len(losses)}}))
    (repo / "metrics.json").write_text(json.dumps({"loss": losses[-1], "epochs_run": len(losses)}))
    (repo / "curve.csv").write_text("step,loss\n" + "".join(f"{i},{v}\n" for i, v in enumerate(losses)))
    (repo / "map.png").write_bytes(png(gray))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


def md_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|--")]


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


def test_report_shows_changed_params_metrics_and_plots(two_commits: Path) -> None:
    repo = two_commits
    report = run([str(SCRIPT), "main", "plots_out"], repo).stdout
    rows = md_rows(report)
    assert ["params.yaml", "train.epochs", "2", "3"] in rows, report
    assert ["params.yaml", "train.lr", "0.01", "0.03"] in rows, report
    assert ["metrics.json", "loss", "0.25", "0.125", "-0.125"] in rows, report
    assert ["metrics.json", "epochs_run", "2", "3", "1"] in rows, report
    plots = {r[0].strip("`"): r[1] for r in rows if len(r) == 2}
    assert plots == {"plot": "change", "loss": "changed", "map.png": "changed"}, report
    assert (repo / "plots_out" / "index.html").exists()
    assert report.startswith("## ") and "`main`" in report.splitlines()[0]

    same = run([str(SCRIPT), "feature"], repo).stdout
    assert "No params changed." in same and "No metrics changed." in same
    assert "No plot differs from `feature`." in same
    assert (repo / "dvc_plots" / "index.html").exists()


@pytest.mark.parametrize("args", [["no-such-branch"], []])
def test_bad_base_is_one_clear_line(two_commits: Path, args: list[str]) -> None:
    proc = run([str(SCRIPT), *args], two_commits, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("pr_report.sh: ")
    assert (args[0] if args else "usage") in proc.stderr
