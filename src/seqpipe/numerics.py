"""Numerics: which CPU kernels the math runs through and on how many threads, so that the same inputs
give the same bytes on any x86-64 machine.

`numerics: portable` (params.yaml; the default) pins every library's CPU dispatch to one code path that
every x86-64 CPU with AVX2 (Intel since 2013, AMD since 2015) runs identically:

- PyTorch's own kernels: the AVX2 build (`ATEN_CPU_CAPABILITY`), not the AVX-512 one a newer CPU picks;
- oneMKL, PyTorch's BLAS: the COMPATIBLE branch (`MKL_CBWR`), the one Intel documents as giving the
  same results on Intel and non-Intel CPUs (its AVX2 branch falls back to auto-dispatch on AMD);
- oneDNN off: its JIT kernels pick blockings from the CPU's cache sizes, so LSTMs and convolutions
  run PyTorch's own kernels over MKL instead;
- numpy's SIMD loops without their AVX-512 variants, and OpenBLAS (numpy, scipy) on its Haswell kernels.

The thread count is part of the result too: PyTorch splits some reductions (e.g. a convolution's
weight gradient) into one partial sum per thread. So each process runs exactly the threads params
give it (`models.<m>.train.num_threads` for train, evaluate, predict and export; 1 for the data
stages), never "whatever this machine has" (`num_threads: 0` asks for that: this run's fair share of
the usable cores among the live trainings, seqpipe.live_runs, so its bytes depend on the machine and
the moment). A run that starts while other trainings are live makes its idle OpenMP threads sleep
rather than spin, so concurrent runs share the cores without collapsing. `numerics: native` lets every
library take the fastest path this CPU offers: bytes then match only on the same CPU kind.
benchmarks/numerics.py measures
what portable costs in training speed; tests/stages/test_numerics.py proves the byte identity.

`configure` runs before numpy or torch are imported (they read these variables when they load);
`configure_torch` right after torch is.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

from seqpipe.errors import SeqpipeError
from seqpipe.params import NUMERICS_MODES as MODES

log = logging.getLogger(__name__)

PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class NumericsError(SeqpipeError):
    """A machine that cannot run the requested numerics."""


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask (taskset, cpusets), capped by a cgroup
    v2 CPU quota (a container's `--cpus`), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def threads_per_process(num_threads: int, other_runs: int = 0) -> int:
    """The threads this process runs: `num_threads` as params give it, or for 0 this run's fair share
    of the usable cores among the `other_runs` live trainings (seqpipe.live_runs); split among the
    local ranks torchrun started; at least 1."""
    total = num_threads or usable_cores() // (other_runs + 1)
    return max(1, total // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def configure(mode: str, threads: int, other_runs: int = 0) -> None:
    """Set the environment the math libraries read when they load: `threads` everywhere, in portable
    mode the pinned code paths, and with `other_runs` live trainings idle OpenMP threads that sleep.
    Must run before numpy and torch are imported."""
    if mode not in MODES:
        raise NumericsError(f"numerics: must be one of {', '.join(MODES)}, got {mode!r}")
    early = [m for m in ("numpy", "torch") if m in sys.modules]
    if early and mode == "portable":
        log.warning("numerics: %s was imported before seqpipe pinned its kernels (an in-process call?); "
                    "this process's results may differ from a `seqpipe` run", " and ".join(early))
    os.environ.update({var: str(threads) for var in THREAD_VARIABLES})
    if other_runs:
        # Idle OpenMP threads sleep at once instead of spinning (libgomp spins ~300,000 times first):
        # spinning threads of concurrent runs steal each other's cores at every parallel region. Alone,
        # spinning is faster, so a run that starts alone keeps the default (benchmarks/concurrency.py).
        # Timing only: the results are the same. A policy set in the environment wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if mode == "portable":
        os.environ.update(PORTABLE_ENV)


def configure_torch(mode: str, threads: int) -> None:
    """Give torch its thread count and, in portable mode, route LSTMs and convolutions away from
    oneDNN; refuse a CPU without AVX2, whose kernels would differ."""
    import torch

    torch.set_num_threads(threads)
    if mode != "portable":
        return
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # stub: ContextProp; really a bool
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        if not _cpu_has_avx2():
            raise NumericsError(f"numerics: portable needs an x86-64 CPU with AVX2 (this one offers "
                                f"{capability}); set numerics: native in params.yaml")
        log.warning("numerics: torch chose its %s kernels before seqpipe pinned AVX2 (an in-process "
                    "call?); results may differ from a `seqpipe` run", capability)


def describe(mode: str, threads: int) -> str:
    """One line for the logs: the mode, the threads, in portable mode the pinned paths, and the
    OpenMP wait policy when it is not the default."""
    pinned = " (AVX2 kernels, MKL COMPATIBLE, no oneDNN)" if mode == "portable" else ""
    policy = os.environ.get("OMP_WAIT_POLICY")
    waits = f", OMP_WAIT_POLICY {policy}" if policy else ""
    return f"numerics {mode}{pinned}, {threads} thread{'s' if threads != 1 else ''}{waits}"


def _cgroup_quota() -> float | None:
    """The cgroup v2 CPU quota of this process in cores (`cpu.max` "QUOTA PERIOD"), None if unlimited."""
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="utf-8").split()
        return int(fields[0]) / int(fields[1]) if fields[0] != "max" else None
    except (OSError, ValueError, IndexError, ZeroDivisionError):
        return None


def _cpu_has_avx2() -> bool:
    try:
        return " avx2 " in f" {Path('/proc/cpuinfo').read_text(encoding='utf-8', errors='replace')} ".replace(
            "\n", " ")
    except OSError:
        return False
