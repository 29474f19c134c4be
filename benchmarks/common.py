"""Helpers for the benchmarks: timing, medians, peak RSS, a prepared data folder."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def write_result(name: str, lines: list[str]) -> None:
    """Write benchmarks/results/<name>.md from `lines` and print it."""
    out = REPO / "benchmarks" / "results" / f"{name}.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def env(cwd: Path) -> dict[str, str]:
    out = dict(os.environ)
    out["PATH"] = f"{BIN}{os.pathsep}{out.get('PATH', '')}"
    out["PYTHONPATH"] = str(cwd / "src") if (cwd / "src").exists() else str(REPO / "src")
    return out


def sh(cmd: list[str], cwd: Path, timeout: float = 3600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(cwd), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


# Linux counts the parent's memory in a child's ru_maxrss when the child is spawned straight from a
# big process (exec takes over the high-water mark of the forked or vforked image), so the command
# runs under a small wrapper interpreter and the wrapper reports its own child's peak.
_WRAPPER = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def peak_rss_of(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of a child process, from wait4's rusage."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], cwd=cwd, env=env(cwd),
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    rss_kb, code = (int(v) for v in proc.stdout.split()[-2:])
    if proc.returncode != 0 or code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return wall, rss_kb / 1024
