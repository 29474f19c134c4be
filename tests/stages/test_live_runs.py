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


CORE_HOLDER = ("from seqpipe import live_runs, numerics; n = numerics.usable_cores(); "
               "live_runs.hold_cores(n, n, lambda: print('waiting', flush=True)); print('ready', flush=True); "
               "import time; time.sleep(600)")


def hold_every_core(runtime: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CORE_HOLDER], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "SEQPIPE_RUNTIME_DIR": str(runtime)})
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_core_slots_are_all_or_none_and_freed_when_the_holder_dies(tmp_path: Path) -> None:
    """A second holder of every core waits (says so once) until the first is killed, then gets them all."""
    first = hold_every_core(tmp_path)
    second = subprocess.Popen([sys.executable, "-c", CORE_HOLDER], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "SEQPIPE_RUNTIME_DIR": str(tmp_path)})
    try:
        assert second.stdout.readline().strip() == "waiting"
        time.sleep(0.5)
        assert second.poll() is None
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert second.stdout.readline().strip() == "ready"
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()


def test_a_training_waits_for_the_cores_another_one_holds(repo_copy: Path, tmp_path: Path) -> None:
    """With a set num_threads, `seqpipe train` waits (one log line) while other trainings hold every core,
    and starts when they end; torchrun's ranks (RANK set) never wait: their launcher holds the cores."""
    runtime = tmp_path / "runtime"
    env = {**run_env(repo_copy), "SEQPIPE_RUNTIME_DIR": str(runtime)}
    run(["seqpipe", "download", "bandwidth"], repo_copy)
    run(["seqpipe", "preprocess", "bandwidth"], repo_copy)
    validate = ["seqpipe", "train", "bandwidth", "--validate-only"]
    holder = hold_every_core(runtime)
    try:
        rank = subprocess.run(validate, cwd=repo_copy, env={**env, "RANK": "0"}, capture_output=True, text=True,
                              timeout=120)
        assert rank.returncode == 0 and "waiting for" not in rank.stderr, rank.stderr
        waiting = subprocess.Popen(validate, cwd=repo_copy, env=env, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert waiting.poll() is None
    finally:
        holder.kill()
        holder.wait()
    _, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, stderr
    assert stderr.count("waiting for 1 of the") == 1 and "held by other seqpipe trainings" in stderr, stderr
