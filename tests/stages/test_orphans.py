"""No process outlives a killed run: `kill -9` of a two-process `seqpipe train` (as of the `dvc repro`
process group) takes torchrun and both workers down with it, and the rerun resumes to the very
model.pt an uninterrupted run writes. A run that finds the checkpoint folder locked is refused."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from seqpipe import distributed
from seqpipe.io import sha256_file
from tests.conftest import error_lines, run, run_env, tiny_overrides, write_params

TWO = {**tiny_overrides("bandwidth"), "models.bandwidth.download.synthetic.n_rows": 3000,
       "models.bandwidth.train.epochs": 8, "models.bandwidth.train.early_stop_patience": 50,
       "models.bandwidth.train.lr": 0.006, "models.bandwidth.train.nproc_per_node": 2}


def _processes() -> dict[int, tuple[int, int, str, str]]:
    """Every live process: pid -> (parent pid, process group, state, start time)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        table[int(stat.parent.name)] = (int(fields[1]), int(fields[2]), fields[0], fields[19])
    return table


def _descendants(root: int) -> dict[int, str]:
    """`root` and every process under it (by parent pid), each with its start time (pids get reused)."""
    table = _processes()
    found = {root}
    while True:
        more = {pid for pid, (ppid, *_) in table.items() if ppid in found} - found
        if not more:
            return {pid: table[pid][3] for pid in found if pid in table}
        found |= more


def _survivors(pids: dict[int, str], groups: set[int]) -> list[int]:
    """Those of `pids` still alive (zombies count as ended), and any live process in `groups`."""
    table = {pid: info for pid, info in _processes().items() if info[2] != "Z"}
    return sorted({pid for pid, start in pids.items() if pid in table and table[pid][3] == start}
                  | {pid for pid, info in table.items() if info[1] in groups})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Processed bandwidth data (3000 rows) and two-process params."""
    folder = tmp_path_factory.mktemp("data")
    write_params(folder / "params.yaml", TWO)
    run(["seqpipe", "download", "bandwidth"], folder)
    run(["seqpipe", "preprocess", "bandwidth"], folder)
    return folder


def _copy(prepared: Path, dest: Path) -> Path:
    dest.mkdir()
    shutil.copy(prepared / "params.yaml", dest / "params.yaml")
    shutil.copytree(prepared / "data", dest / "data")
    return dest


def test_kill_9_leaves_no_process_and_the_rerun_resumes_byte_identically(prepared: Path, tmp_path: Path) -> None:
    straight = _copy(prepared, tmp_path / "straight")
    run(["seqpipe", "train", "bandwidth"], straight)

    work = _copy(prepared, tmp_path / "killed")
    first = work / "models/bandwidth/checkpoints/*/epoch_0001.pt"
    with open(tmp_path / "killed.log", "w") as log:
        # a process group of its own, as `dvc repro` and its stage command are to a terminal
        launcher = subprocess.Popen(["seqpipe", "train", "bandwidth"], cwd=work, env=run_env(work),
                                    stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 300
        while not glob.glob(str(first)):
            assert launcher.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.log").read_text()
            time.sleep(0.05)
        run_pids = _descendants(launcher.pid)
        groups = {_processes()[pid][1] for pid in run_pids}
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    assert len(run_pids) == 4, run_pids  # the launcher, torchrun and two workers
    assert len(groups) == 4, groups      # torchrun and each worker in a session of its own
    deadline = time.monotonic() + 60
    while (left := _survivors(run_pids, groups)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"survivors of the killed run: {left}\n{(tmp_path / 'killed.log').read_text()}"
    assert not (work / "models/bandwidth/model.pt").exists()

    resumed = run(["seqpipe", "train", "bandwidth"], work)
    assert "resuming from" in resumed.stderr
    assert sha256_file(work / "models/bandwidth/model.pt") == sha256_file(straight / "models/bandwidth/model.pt")


def test_a_run_is_refused_while_another_holds_the_checkpoint_folder(prepared: Path, tmp_path: Path) -> None:
    work = _copy(prepared, tmp_path / "work")
    write_params(work / "params.yaml", {**TWO, "models.bandwidth.train.nproc_per_node": 1,
                                        "models.bandwidth.train.epochs": 1})
    folder = work / "models/bandwidth/checkpoints"
    with distributed.run_lock(folder, "bandwidth"):  # a survivor of an earlier run, as far as the rerun can tell
        proc = run(["seqpipe", "train", "bandwidth"], work, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert error_lines(proc.stderr) == [
        f"seqpipe: error: models/bandwidth/checkpoints: another `seqpipe train bandwidth` is still running "
        f"(pid {os.getpid()}), or the survivor of a killed one; wait for it to end or stop it, then rerun"]
    assert not any(folder.iterdir())
    assert not (work / "models/bandwidth/model.pt").exists()
    run(["seqpipe", "train", "bandwidth"], work)  # once it is free
