"""Two trainings at once on the same cores: aggregate throughput against running them one after the
other, side by side in one run, under
- seqpipe: a training with a set thread count holds that many core slots and waits while others
  hold them (seqpipe.live_runs.hold_cores); a run that starts alone keeps libgomp's spinning default,
  one that finds another live training makes its idle OpenMP threads sleep;
- seqpipe-no-slots: the same without core slots (SEQPIPE_CORE_SLOTS=0), both run at once;
- OMP_WAIT_POLICY=ACTIVE (always spinning) and PASSIVE (always sleeping), without core slots.

Two work folders hold the same prepared data; each training is a default `seqpipe train MODEL --fresh`
(default params, `--epochs` epochs). Per wait policy: the two one after the other (sequential seconds),
then both started together (pair seconds); aggregate = sequential / pair, so 1.0 means sharing lost
nothing and 0.5 that two at once took twice as long as one after the other. Every model.pt must be
byte-identical across policies and concurrency (the wait policy changes timing, never results).

Second part, as users run sweeps: two queued experiments (`dvc exp run --queue`, each retraining
the model with another lr) run by `dvc queue start -j 1` and then, queued anew, by `-j 2`, in a repo
copy whose data stages ran first; aggregate = the -j 1 wall time / the -j 2 wall time, DVC's queue
overhead included on both sides.

Usage: python -m benchmarks.concurrency [--model bandwidth] [--epochs 1] [--no-queue]. Run it on a quiet
machine. Writes benchmarks/results/concurrency.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import REPO, env, machine, median, sh, write_result
from seqpipe.io import sha256_file

# What each training's environment says about idle OpenMP threads. "seqpipe" sets nothing: a run that
# starts alone keeps libgomp's default (spin ~300,000 times, then sleep), a run that finds another live
# training sets OMP_WAIT_POLICY=PASSIVE (seqpipe.numerics). ACTIVE spins forever, PASSIVE sleeps at once.
NO_SLOTS = {"SEQPIPE_CORE_SLOTS": "0"}
POLICIES = {"seqpipe": {}, "seqpipe-no-slots": NO_SLOTS,
            "OMP_WAIT_POLICY=ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE", **NO_SLOTS},
            "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE", **NO_SLOTS},
            **{f"GOMP_SPINCOUNT={n}": {"GOMP_SPINCOUNT": str(n), **NO_SLOTS} for n in (300000, 30000, 3000)}}
DEFAULT_POLICIES = ("seqpipe", "seqpipe-no-slots", "OMP_WAIT_POLICY=ACTIVE", "OMP_WAIT_POLICY=PASSIVE")
STAGGER_S = 1.0   # the second training starts this much later (after the first registered as live)


def prepare(work: Path, model: str, epochs: int) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["models"][model]["train"]["epochs"] = epochs or raw["models"][model]["train"]["epochs"]
    work.mkdir(parents=True)
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for stage in ("download", "preprocess"):
        sh(["seqpipe", stage, model], work)


def start(work: Path, model: str, policy: str) -> subprocess.Popen:
    base = {k: v for k, v in env(work).items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", *NO_SLOTS)}
    return subprocess.Popen(["seqpipe", "train", model, "--fresh"], cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**base, **POLICIES[policy]})


def finish(proc: subprocess.Popen) -> None:
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"seqpipe train failed:\n{stderr[-2000:]}")


def sequential(works: list[Path], model: str, policy: str) -> float:
    began = time.perf_counter()
    for work in works:
        finish(start(work, model, policy))
    return time.perf_counter() - began


def together(works: list[Path], model: str, policy: str) -> float:
    """Both at once, the second STAGGER_S later: under "seqpipe" the first runs with the default
    policy (it started alone) and the second with PASSIVE (it found the first)."""
    began = time.perf_counter()
    procs = []
    for work in works:
        procs.append(start(work, model, policy))
        time.sleep(STAGGER_S)
    for proc in procs:
        finish(proc)
    return time.perf_counter() - began


def queue_copy(work: Path, model: str, epochs: int) -> Path:
    """A git repo of the tracked files with `epochs`, its data stages run and dvc.lock committed, so a
    queued experiment reruns only train and evaluate."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if not rel.startswith(("data/raw/", "data/processed/", "models/", "metrics/", "plots/")) \
                and rel != "dvc.lock" and (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    raw = yaml.safe_load((work / "params.yaml").read_text())
    raw["models"][model]["train"]["epochs"] = epochs or raw["models"][model]["train"]["epochs"]
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    sh(["git", "init", "-q", "-b", "main"], work)
    sh(["dvc", "repro", f"preprocess-{model}"], work)
    sh(["git", "add", "-A"], work)
    sh(["git", "commit", "-qm", "data stages"], work)
    return work


def queue_run(repo: Path, model: str, jobs: int) -> float:
    """Queue two experiments (lr about x1 and x2), start `jobs` workers, wait until both succeeded."""
    lr = yaml.safe_load((repo / "params.yaml").read_text())["models"][model]["train"]["lr"]
    sh(["dvc", "queue", "remove", "--all"], repo)
    for i, factor in enumerate((1, 2)):  # lr differs per round too: DVC's run cache must not answer round 2
        sh(["dvc", "exp", "run", "--queue", "-n", f"j{jobs}-{i}", f"evaluate-{model}",
            "-S", f"models.{model}.train.lr={lr * (factor + jobs / 100)}"], repo)
    began = time.perf_counter()
    with open(repo.parent / f"queue-j{jobs}.log", "w") as log:  # workers outlive the command: no pipe
        subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], cwd=repo, env=env(repo), stdout=log,
                       stderr=subprocess.STDOUT, check=True, timeout=120)
    while True:
        out = sh(["dvc", "queue", "status"], repo).stdout
        states = [line.split()[-1] for line in out.splitlines() if line.split()[:1] and line.split()[0] != "Task"
                  and not line.startswith("Worker") and len(line.split()) >= 4]
        if "Failed" in states:
            raise RuntimeError(f"a queued experiment failed:\n{out}")
        if states and all(s == "Success" for s in states) and "0 active" in out:
            return time.perf_counter() - began
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bandwidth")
    parser.add_argument("--epochs", type=int, help="default: params.yaml's (a default training)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--policies", default=",".join(DEFAULT_POLICIES), help="comma list of: " + ", ".join(POLICIES))
    parser.add_argument("--no-queue", action="store_true", help="skip the dvc queue part")
    args = parser.parse_args()
    policies = args.policies.split(",")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        parser.error(f"--policies: unknown {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    runs: dict[str, list[tuple[float, float]]] = {p: [] for p in policies}
    hashes: set[str] = set()
    queue: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        works = [Path(tmp) / "a", Path(tmp) / "b"]
        prepare(works[0], args.model, args.epochs)
        shutil.copytree(works[0], works[1])
        for _ in range(args.repeats):   # policies alternate: noise hits each alike
            for policy in policies:
                seq = sequential(works, args.model, policy)
                hashes |= {sha256_file(w / "models" / args.model / "model.pt") for w in works}
                pair = together(works, args.model, policy)
                hashes |= {sha256_file(w / "models" / args.model / "model.pt") for w in works}
                runs[policy].append((seq, pair))
                print(policy, f"sequential {seq:.1f} s, together {pair:.1f} s", flush=True)
        if not args.no_queue:
            repo = queue_copy(Path(tmp) / "queue" / "repo", args.model, args.epochs)
            for jobs in (1, 2):
                queue[jobs] = queue_run(repo, args.model, jobs)
                print(f"dvc queue start -j {jobs}: {queue[jobs]:.1f} s", flush=True)
    rows = {p: {"sequential": median([r[0] for r in v]), "pair": median([r[1] for r in v])} for p, v in runs.items()}
    for row in rows.values():
        row["aggregate"] = row["sequential"] / row["pair"]
    info = machine()
    lines = [f"# Two trainings at once: core slots and OpenMP wait policy ({dt.date.today()})", "",
             f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}; `seqpipe train {args.model} --fresh` "
             f"with default params{f' and {args.epochs} epoch(s)' if args.epochs else ''} in two work folders, the second started "
             f"{STAGGER_S:g} s after the first; medians of {args.repeats} alternated repeats; "
             "`python -m benchmarks.concurrency`.", "",
             "| policy | one after the other (s) | both at once (s) | aggregate throughput vs one after the other |",
             "|---|---|---|---|"]
    lines += [f"| {p} | {r['sequential']:.1f} | {r['pair']:.1f} | {r['aggregate']:.2f}x |" for p, r in rows.items()]
    base = rows["seqpipe"]["sequential"] if "seqpipe" in rows else None
    lines += [""] + ([f"One after the other, each policy's time / seqpipe's (what a run alone pays for it): "
                      + ", ".join(f"{p} {r['sequential'] / base:.2f}x" for p, r in rows.items())] if base else [])
    lines += [f"model.pt byte-identical under every policy, alone and together: "
              f"{'yes' if len(hashes) == 1 else 'NO (' + str(len(hashes)) + ' different files)'}."]
    if queue:
        lines += ["", f"`dvc queue start` of two queued experiments (train + evaluate {args.model}, default params but "
                  f"lr x1 and x2): -j 1 {queue[1]:.1f} s, -j 2 {queue[2]:.1f} s; aggregate throughput "
                  f"of -j 2 vs -j 1: {queue[1] / queue[2]:.2f}x."]
    write_result("concurrency", lines)


if __name__ == "__main__":
    main()
