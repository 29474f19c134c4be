"""The training curves are logged live by DVCLive in the training loop: `dvc exp show` shows the epochs
of an experiment while it runs, and the committed curves (plots/<model>/train/) are DVCLive's files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from seqpipe import training_curves
from tests.conftest import copy_repo, run, run_env, tiny_overrides

LIVE_METRICS = "models/freq_filter/live/metrics.json"


def running_step(repo: Path) -> int | None:
    """The step DVCLive last wrote for the running workspace experiment, per `dvc exp show`, or None."""
    proc = run(["dvc", "exp", "show", "--json"], repo, check=False)
    if proc.returncode != 0:
        return None
    for row in json.loads(proc.stdout or "[]"):
        for group in row.get("experiments") or []:
            if (group.get("executor") or {}).get("state") != "running":
                continue
            for rev in group["revs"]:
                metrics = (rev.get("data") or {}).get("metrics", {}).get(LIVE_METRICS, {})
                if "data" in metrics:
                    return int(metrics["data"]["step"])
    return None


def test_a_running_experiment_shows_its_epochs_in_dvc_exp_show(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo", {**tiny_overrides("freq_filter"), "models.freq_filter.train.epochs": 2000,
                                         "models.freq_filter.train.early_stop_patience": 2000})
    run(["dvc", "repro", "preprocess-freq_filter"], repo)
    proc = subprocess.Popen(["dvc", "exp", "run", "train-freq_filter"], cwd=repo, env=run_env(repo),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    # the copy holds the committed metrics.json of the last full run until DVC removes the stage's outputs
    # and trains: only once this run's DVCLive files appear (plots/ is DVC-cached, not in the copy) does
    # what dvc exp show reads come from the running training
    losses = repo / "models/freq_filter/live/plots/metrics/train/loss.tsv"
    try:
        deadline, step = time.monotonic() + 120, None
        while proc.poll() is None and time.monotonic() < deadline:
            step = running_step(repo) if losses.exists() else None
            if step is not None and step >= 1:
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"the experiment ended before dvc exp show saw it: {proc.stderr.read()}"
        assert step is not None and step >= 1, "dvc exp show never showed the running epochs"
        rows = losses.read_text(encoding="utf-8")
        assert rows.startswith("step\tloss") and len(rows.splitlines()) >= step + 2   # a header and step + 1 epochs
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_evaluate_commits_what_dvclive_wrote_and_nothing_else(tmp_path: Path) -> None:
    live = training_curves.LiveCurves(tmp_path / "live")
    history = [{"epoch": k + 1, "train_loss": 1 / (k + 2), "val_loss": float("nan") if k == 1 else 1 / (k + 3),
                "lr": 1e-3 * 0.5 ** k} for k in range(3)]
    for record in history:
        live.log(record)
    live.end()
    (tmp_path / "live" / ".gitignore").write_text("/plots\n", encoding="utf-8")   # what DVC adds beside them
    training_curves.publish(tmp_path / "live", tmp_path / "published")
    files = sorted(p.relative_to(tmp_path / "published").as_posix() for p in (tmp_path / "published").rglob("*")
                   if p.is_file())
    assert files == ["metrics.json", "plots/metrics/lr.tsv", "plots/metrics/train/loss.tsv",
                     "plots/metrics/val/loss.tsv"]
    summary = json.loads((tmp_path / "published" / "metrics.json").read_text(encoding="utf-8"))
    assert summary == {"train": {"loss": 0.25}, "val": {"loss": 0.2}, "lr": 0.00025, "step": 2}
    assert (tmp_path / "published/plots/metrics/val/loss.tsv").read_text(encoding="utf-8").splitlines() == [
        "step\tloss", "0\t0.3333333333333333", "1\tnan", "2\t0.2"]
