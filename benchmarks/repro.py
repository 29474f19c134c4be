"""3-4. Full `dvc repro` from an empty cache (per-stage times), and no-op repro vs DVC's own floor; with
`before`, the same for a git revision's tree first, so the two are measured side by side in one run."""

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


def copy_repo(dest: Path, source: Path = REPO) -> Path:
    """What a fresh clone of `source` holds (its tracked and new files, without DVC's outputs), as a new
    git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=source, capture_output=True,
                           text=True, check=True).stdout.split()
    for rel in files:
        if rel.startswith(("data/raw/", "data/processed/", "models/", "metrics/", "plots/")):
            continue  # dvc.lock stays: a fresh clone has it, and DVC rewrites it after every stage
        if (source / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, dest / rel)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        sh(cmd, dest)
    return dest


def full_repro(work: Path, name: str = "full", source: Path = REPO) -> dict:
    """One `dvc repro` from an empty cache, as `make repro` runs it; a stage's time runs from its
    "Running stage" line to the next one (so DVC's own per-stage work is counted where it happens)."""
    repo = copy_repo(work / name, source)
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
    if source != REPO:  # another revision: its headline metrics (its evaluation may have other keys)
        return {"total_s": end - start, "stages_s": stages, "repo": repo,
                "headline": {p.stem: json.loads(p.read_text()) for p in sorted((repo / "metrics").glob("*.json"))}}
    metrics = {m: json.loads((repo / detail_file(m)).read_text()) for m in pipelines.names()}
    return {"total_s": end - start, "stages_s": stages, "metrics": metrics, "repo": repo,
            "headline": {m: json.loads((repo / "metrics" / f"{m}.json").read_text()) for m in pipelines.names()}}


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


def noop(finished: Path, work: Path, before: Path | None = None, repeats: int = 5) -> dict:
    """No-op `dvc repro` in finished repos, alternating ours, the `before` revision's and a 1-stage project."""
    trivial = trivial_project(work)
    sides = {"ours": finished, "floor": trivial, **({"before": before} if before else {})}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeats):
        for side, repo in sides.items():
            times[side].append(timed(lambda: sh(["dvc", "repro"], repo))[0])
    out = {f"{side}_s": median(t) for side, t in times.items()}
    return {**out, "above_floor_s": out["ours_s"] - out["floor_s"], "repeats": repeats}


def run(work: Path | None = None, before: str | None = None) -> dict:
    """The full repro of `before` (a git revision), if given, then of the working tree; then no-op repros."""
    work = Path(work or tempfile.mkdtemp(prefix="seqpipe-bench-"))
    result: dict = {}
    if before:
        tree = work / "before-tree"
        sh(["git", "worktree", "add", "--detach", str(tree), before], REPO)
        try:
            old = full_repro(work, "before", tree)
        finally:
            sh(["git", "worktree", "remove", "--force", str(tree)], REPO)
        result["before"] = {"rev": before, **{k: v for k, v in old.items() if k != "repo"}}
    full = full_repro(work)
    result.update({k: v for k, v in full.items() if k != "repo"})
    result["noop"] = noop(full["repo"], work, old["repo"] if before else None)
    return result
