"""CLI startup of seqpipe, two source trees side by side: a git revision ("before") vs the working tree.

Usage: python -m benchmarks.startup [--before REV] [--after REV] [--repeats N]

Each tree gets its own temp folder: <tmp>/<side>/src (`git archive REV src`, or a copy of the working
tree's src/ taken at the start, so edits made during the run do not leak in) and a params.yaml with
models.bandwidth.download.synthetic.n_rows = 2000; `seqpipe download bandwidth` runs there once. Then,
with PYTHONPATH=<tmp>/<side>/src, it times in strict alternation (before, after, before, after, ...):
`seqpipe list` (wall), `import seqpipe.cli` (wall), `seqpipe preprocess bandwidth` (first stderr line,
and wall), and checks once per tree whether list and preprocess import torch. The ratio before/after
is only meaningful because both sides are measured side by side in one run: run it on a quiet
machine, with nothing else (no training, no tests) running. Writes benchmarks/results/startup.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import REPO, env, machine, median, sh

SIDES = ("before", "after")
CLI = "import sys; from seqpipe.cli import main; sys.exit(main({argv!r}))"
TORCH_CHECK = ("import sys, seqpipe; from seqpipe.cli import main; rc = main({argv!r}); "
               "print(seqpipe.__file__); print('torch' in sys.modules); sys.exit(rc)")
COMMANDS: dict[str, list[str]] = {"list": ["list"], "preprocess": ["preprocess", "bandwidth"]}


def prepare(work: Path, rev: str | None) -> None:
    """<work>/src from `git archive REV src` (or the working tree), params.yaml, data/raw/bandwidth."""
    work.mkdir(parents=True)
    if rev is None:
        shutil.copytree(REPO / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    else:
        archive = subprocess.Popen(["git", "-C", str(REPO), "archive", rev, "src"], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(work)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {rev} src failed")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["models"]["bandwidth"]["download"]["synthetic"]["n_rows"] = 2000
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        sh([sys.executable, "-c", CLI.format(argv=["download", "bandwidth"])], work, timeout=600)
    except RuntimeError as exc:  # e.g. this tree's params.py does not accept the repo's params.yaml
        raise SystemExit(f"\n*** `seqpipe download bandwidth` failed for the {work.name} tree ***\n{exc}")


def wall(work: Path, code: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env(work), capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{work.name}: {code} failed:\n{proc.stderr[-3000:]}")
    return took


def first_stderr_line(work: Path, code: str) -> tuple[float, float]:
    """(seconds until the first stderr line, seconds until exit) of `python -c code`."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=work, env=env(work), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    first_s = time.perf_counter() - start
    rest = proc.stderr.read()
    total_s = time.perf_counter() - start
    if proc.wait() != 0 or not first:
        raise SystemExit(f"{work.name}: {code} failed:\n{(first + rest)[-3000:]}")
    return first_s, total_s


def loads_torch(work: Path, argv: list[str]) -> bool:
    proc = sh([sys.executable, "-c", TORCH_CHECK.format(argv=argv)], work)
    where, torch = proc.stdout.split()[-2:]
    assert Path(where).is_relative_to(work / "src"), f"{work.name}: seqpipe imported from {where}"
    return torch == "True"


def measure(works: dict[str, Path], repeats: int) -> dict[str, dict[str, list[float]]]:
    timings: dict[str, dict[str, list[float]]] = {}
    probes = {"seqpipe list (wall)": lambda w: wall(w, CLI.format(argv=COMMANDS["list"])),
              "import seqpipe.cli (wall)": lambda w: wall(w, "import seqpipe.cli"),
              "seqpipe preprocess bandwidth": lambda w: first_stderr_line(w, CLI.format(argv=COMMANDS["preprocess"]))}
    for side in SIDES:  # warm-up: .pyc files and the page cache, not timed
        [probe(works[side]) for probe in probes.values()]
    for i in range(repeats):
        print(f"round {i + 1}/{repeats}", flush=True)
        for name, probe in probes.items():
            for side in SIDES:  # alternate, so machine noise hits both trees alike
                got = probe(works[side])
                if isinstance(got, tuple):
                    timings.setdefault(f"{name}: first stderr line", {}).setdefault(side, []).append(got[0])
                    timings.setdefault(f"{name} (wall)", {}).setdefault(side, []).append(got[1])
                else:
                    timings.setdefault(name, {}).setdefault(side, []).append(got)
    return timings


def render(timings: dict[str, dict[str, list[float]]], torch: dict[str, dict[str, bool]], labels: dict[str, str],
           repeats: int) -> str:
    m = machine()
    lines = ["# seqpipe CLI startup, before vs after", "",
             f"Measured {dt.date.today().isoformat()} by `python -m benchmarks.startup` on {m['cpu']}, "
             f"{m['cores']} cores, Python {m['python']}: before = {labels['before']}, after = {labels['after']}. "
             f"{repeats} runs per side, alternating before/after, after one untimed warm-up each.", "",
             "| command | before median s | after median s | ratio before/after | before min s | after min s |",
             "|---|---|---|---|---|---|"]
    for name, t in timings.items():
        b, a = median(t["before"]), median(t["after"])
        lines.append(f"| {name} | {b:.3f} | {a:.3f} | {b / a:.2f}x | {min(t['before']):.3f} | {min(t['after']):.3f} |")
    lines += ["", "| command | torch imported, before | torch imported, after |", "|---|---|---|",
              *[f"| seqpipe {' '.join(COMMANDS[c])} | {'yes' if v['before'] else 'no'} | "
                f"{'yes' if v['after'] else 'no'} |" for c, v in torch.items()], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="0051d25", help="git revision (default: 0051d25)")
    parser.add_argument("--after", default=None, help="git revision (default: the working tree's src/)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    revs = {"before": args.before, "after": args.after}
    labels = {side: f"`{rev}`" if rev else "the working tree" for side, rev in revs.items()}
    with tempfile.TemporaryDirectory(prefix="seqpipe-startup-") as tmp:
        works = {side: Path(tmp) / side for side in SIDES}
        for side in SIDES:
            print(f"preparing {side} ({labels[side]}) in {works[side]}", flush=True)
            prepare(works[side], revs[side])
        torch = {c: {side: loads_torch(works[side], argv) for side in SIDES} for c, argv in COMMANDS.items()}
        timings = measure(works, args.repeats)
    report = render(timings, torch, labels, args.repeats)
    out = REPO / "benchmarks/results/startup.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
