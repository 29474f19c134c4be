"""Concurrent runs share the cores: the live-run registry (seqpipe.live_runs) counts other processes'
trainings, not its own or its launcher's, forgets one killed with SIGKILL; `num_threads: 0` becomes a
fair share; a training that starts beside another one makes its idle OpenMP threads sleep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqpipe import live_runs, numerics
from tests.conftest import run, run_env

HOLDER = "from seqpipe import live_runs; live_runs.register(); print('ready', flush=True); import time; time.sleep(600)"


def hold_registration(runtime: Path) -> subprocess.Popen:
    """A separate process registered as a live training in `runtime` until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "SEQPIPE_RUNTIME_DIR": str(runtime)})
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_registry_counts_other_processes_and_forgets_killed_ones(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQPIPE_RUNTIME_DIR", str(tmp_path))
    assert live_runs.others() == 0
    holders = [hold_registration(tmp_path) for _ in range(2)]
    try:
        assert live_runs.others() == 2
        holders[0].send_signal(signal.SIGKILL)
        holders[0].wait()
        time.sleep(1.1)   # past the grace for an entry created but not yet locked
        assert live_runs.others() == 1
        assert not (tmp_path / f"{holders[0].pid}.run").exists()   # the stale entry is removed
    finally:
        for proc in holders:
            proc.kill()
            proc.wait()


def test_a_process_does_not_count_itself_or_its_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQPIPE_RUNTIME_DIR", str(tmp_path))
    live_runs.register()   # this test process plays the launcher (a `seqpipe train` under torchrun)
    try:
        child = "from seqpipe import live_runs; live_runs.register(); print(live_runs.others())"
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True,
                             env={**os.environ, "SEQPIPE_RUNTIME_DIR": str(tmp_path)}).stdout
        assert out.strip() == "0"
    finally:   # unregister: the test process goes on running other tests
        os.close(live_runs._held.pop())


def test_num_threads_zero_is_a_fair_share_and_a_set_number_is_kept() -> None:
    cores = numerics.usable_cores()
    assert numerics.threads_per_process(0, other_runs=0) == cores
    assert numerics.threads_per_process(0, other_runs=cores) == 1
    assert numerics.threads_per_process(0, other_runs=1) == max(1, cores // 2)
    assert numerics.threads_per_process(3, other_runs=5) == 3   # part of the result: never changed


def test_a_training_beside_another_one_lets_idle_threads_sleep(repo_copy: Path, tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    env = {**run_env(repo_copy), "SEQPIPE_RUNTIME_DIR": str(runtime)}
    env.pop("OMP_WAIT_POLICY", None)
    run(["seqpipe", "download", "bandwidth"], repo_copy)
    run(["seqpipe", "preprocess", "bandwidth"], repo_copy)
    validate = ["seqpipe", "train", "bandwidth", "--validate-only"]
    alone = subprocess.run(validate, cwd=repo_copy, env=env, capture_output=True, text=True, check=True).stderr
    assert "OMP_WAIT_POLICY" not in alone, alone
    holder = hold_registration(runtime)
    try:
        beside = subprocess.run(validate, cwd=repo_copy, env=env, capture_output=True, text=True, check=True).stderr
    finally:
        holder.kill()
        holder.wait()
    assert "OMP_WAIT_POLICY PASSIVE" in beside, beside
