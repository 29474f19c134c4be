"""A queued sweep run by two parallel `dvc queue` workers, with the real dvc CLI on a temp repo copy.

Queued experiments run in their own `.dvc/tmp/exps/` copies; what they share is the DVC cache and
run cache, the git repository and the machine. This checks that two models (and two runs of one
model) side by side neither fail nor write into each other's results.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import exp_show, run, run_env, tiny_overrides, write_params

MODELS = ("bandwidth", "freq_filter")
SWEEP, SIZES = "models.bandwidth.model.hidden_size=range(8,17,8)", (8, 16)


def queue_tasks(repo: Path) -> tuple[dict[str, str], str]:
    """`dvc queue status` as {name: status} and its worker line."""
    out = run(["dvc", "queue", "status"], repo).stdout
    tasks = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 4 and cells[0] != "Task" and not line.startswith("Worker"):
            tasks[cells[1]] = cells[-1]
    workers = next((line for line in out.splitlines() if line.startswith("Worker status")), "")
    return tasks, workers


def wait_for_queue(repo: Path, timeout: float) -> tuple[dict[str, str], int]:
    """Poll until every task has finished: (final statuses, most tasks seen running at once)."""
    deadline, most_running = time.monotonic() + timeout, 0
    while True:
        tasks, workers = queue_tasks(repo)
        most_running = max(most_running, list(tasks.values()).count("Running"))
        done = all(s in ("Success", "Failed") for s in tasks.values())
        if done and "0 active" in workers:
            return tasks, most_running
        assert time.monotonic() < deadline, f"queue not done after {timeout} s: {tasks} {workers}"
        time.sleep(2)


@pytest.mark.slow  # 80 s on a quiet 2-core machine, 3.5 min on a busy one: three queued experiments, one run alone
def test_queued_sweep_of_two_models_on_two_workers(repo_copy: Path) -> None:
    repo = repo_copy
    # repo_copy committed the tiny params (queued copies see git-tracked files only): one thread per
    # model, so the `-j 2` workers share the 2 cores
    committed = {m: json.loads((repo / "metrics" / f"{m}.json").read_text()) for m in MODELS}

    queued = run(["dvc", "exp", "run", "--queue", "-n", "ff", "evaluate-freq_filter",
                  "-S", "models.freq_filter.train.lr=0.003"], repo).stdout
    queued += run(["dvc", "exp", "run", "--queue", "-n", "bw", "evaluate-bandwidth", "-S", SWEEP], repo).stdout
    names = ["ff", "bw-1", "bw-2"]
    assert all(f"Queued experiment '{n}'" in queued for n in names), queued
    # the workers outlive `dvc queue start` and inherit its stdout: a pipe there (as `run` captures)
    # would block until they exit, so its output goes to a file
    with open(repo.parent / "queue_start.log", "w+") as log:
        start = subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=repo, env=run_env(repo), stdout=log,
                               stderr=subprocess.STDOUT, timeout=60)
        log.seek(0)
        assert start.returncode == 0 and "Started '2'" in log.read()
    tasks, most_running = wait_for_queue(repo, timeout=600)
    assert tasks == {n: "Success" for n in names}, tasks
    assert most_running == 2, "the two workers never ran experiments side by side"

    exps = exp_show(repo)
    assert set(names) <= set(exps), exps.keys()
    for name in names:  # each experiment changed its own model's metrics and left the other's alone
        own = "freq_filter" if name == "ff" else "bandwidth"
        metrics = exps[name]["metrics"]
        assert metrics[f"metrics/{own}.json"] != committed[own]
        assert all(metrics[f"metrics/{m}.json"] == committed[m] for m in MODELS if m != own), name
    for i, size in enumerate(SIZES):
        exp = exps[f"bw-{i + 1}"]
        assert exp["params"]["models"]["bandwidth"]["model"]["hidden_size"] == size
        # the model the experiment recorded (its dvc.lock names model.pt by hash) is one of its own size
        lock = yaml.safe_load(run(["git", "show", f"{exp['rev']}:dvc.lock"], repo).stdout)["stages"]
        card = next(o for o in lock["train-bandwidth"]["outs"] if o["path"].endswith("model_card.json"))
        blob = repo / ".dvc/cache/files/md5" / card["md5"][:2] / card["md5"][2:]
        assert json.loads(blob.read_text())["params"]["model"]["hidden_size"] == size
    bw = [exps[f"bw-{i + 1}"]["metrics"]["metrics/bandwidth.json"]["test"] for i in range(2)]
    assert bw[0] != bw[1]
    assert exps["ff"]["params"]["models"]["freq_filter"]["train"]["lr"] == 0.003

    # run side by side = run alone: the same params one after the other, without the run cache
    write_params(repo / "params.yaml",
                 {**tiny_overrides(), "models.bandwidth.model.hidden_size": SIZES[1]})
    run(["dvc", "repro", "--no-run-cache", "evaluate-bandwidth"], repo)
    alone = json.loads((repo / "metrics" / "bandwidth.json").read_text())
    assert alone["test"] == bw[1]

    shown = run(["dvc", "exp", "show", "--md"], repo).stdout
    for name in names:
        assert f"[{name}]" in shown
    assert "metrics/bandwidth.json:test.rmse" in shown and "models.bandwidth.model.hidden_size" in shown
