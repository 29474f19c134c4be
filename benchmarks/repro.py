"""3-4. Full `dvc repro` from an empty cache (per-stage times), and no-op repro vs DVC's own floor."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, env, median, sh, timed
from seqpipe import pipelines
from seqpipe.metrics import detail_file


def copy_repo(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for rel in files:
        if rel.startswith(("data/raw/", "data/processed/", "models/", "metrics/", "plots/")) or rel == "dvc.lock":
            continue
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        sh(cmd, dest)
    return dest


def full_repro(work: Path) -> dict:
    """One `dvc repro` from an empty cache, as `make repro` runs it; a stage's time runs from its
    "Running stage" line to the next one (so DVC's own per-stage work is counted where it happens)."""
    repo = copy_repo(work / "full")
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env(repo), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        if line.startswith("Running stage '"):
            marks.append((line.split("'")[1], time.perf_counter()))
    if proc.wait() != 0:
        raise RuntimeError("dvc repro failed:\n" + "".join(tail))
    end = time.perf_counter()
    stages = {name: t1 - t0 for (name, t0), (_, t1) in zip(marks, marks[1:] + [("end", end)])}
    # the whole evaluation (what each model's quality_aim reads), not only the headline in metrics/
    metrics = {m: json.loads((repo / detail_file(m)).read_text()) for m in pipelines.names()}
    return {"total_s": end - start, "stages_s": stages, "metrics": metrics, "repo": repo}


def trivial_project(work: Path) -> Path:
    repo = work / "trivial"
    repo.mkdir()
    for cmd in (["git", "init", "-q", "-b", "main"], ["dvc", "init", "-q"]):
        sh(cmd, repo)
    (repo / "dvc.yaml").write_text("stages:\n  one:\n    cmd: echo hello > out.txt\n    outs: [out.txt]\n")
    sh(["dvc", "repro"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "trivial"], repo)
    return repo


def noop(finished: Path, work: Path, repeats: int = 5) -> dict:
    trivial = trivial_project(work)
    ours, floor = [], []
    for _ in range(repeats):  # alternating
        ours.append(timed(lambda: sh(["dvc", "repro"], finished))[0])
        floor.append(timed(lambda: sh(["dvc", "repro"], trivial))[0])
    return {"ours_s": median(ours), "floor_s": median(floor), "above_floor_s": median(ours) - median(floor),
            "repeats": repeats}


def run(work: Path | None = None) -> dict:
    work = Path(work or tempfile.mkdtemp(prefix="seqpipe-bench-"))
    full = full_repro(work)
    result = {k: v for k, v in full.items() if k != "repo"}
    result["noop"] = noop(full["repo"], work)
    return result
