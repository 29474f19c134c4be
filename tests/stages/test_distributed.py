"""Multi-process training: real `seqpipe train` under real torchrun with a gloo process group (CPU), on
one node and on two "nodes" (two `seqpipe train --nnodes 2` side by side on this machine, meeting
through torchrun's c10d rendezvous on 127.0.0.1)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch

from seqpipe import checkpoint, distributed
from seqpipe.errors import SeqpipeError
from seqpipe.fit import evaluate_loss
from seqpipe.params import ParamsError, load_params
from seqpipe.stages.splits import load_split_tensors, whole
from seqpipe.tasks import Regression
from tests.conftest import error_lines, run, run_env, run_folder, signal_when_exists, tiny_overrides, write_params

EPOCHS = 15
LR = 0.003  # one process; two take 2 x LR (linear scaling: each step sees 2 x batch_size samples)
OVERRIDES = {**tiny_overrides("bandwidth"), "models.bandwidth.download.synthetic.n_rows": 3000,
             "models.bandwidth.train.epochs": EPOCHS, "models.bandwidth.train.early_stop_patience": 50,
             "models.bandwidth.train.scheduler": "plateau"}  # epochs not in the fingerprint: a run can be extended
TWO = {**OVERRIDES, "models.bandwidth.train.lr": 2 * LR, "models.bandwidth.train.nproc_per_node": 2}
PER_NODE = {**TWO, "models.bandwidth.train.nproc_per_node": 1}  # x 2 nodes: the world size of TWO
NODE_TIMEOUT_S = 300  # a loaded 2-core machine: rendezvous, two imports of torch, a restart


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, str]]:
    """bandwidth trained on the same data by 1 process and by 2: {nproc: (folder, stderr)}."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    # one thread per process in both runs: a fair per-core comparison, and a two-thread process
    # is slowed badly by any other load on a shared machine
    write_params(one / "params.yaml", {**OVERRIDES, "models.bandwidth.train.lr": LR,
                                       "models.bandwidth.train.num_threads": 1})
    write_params(two / "params.yaml", TWO)
    run(["seqpipe", "download", "bandwidth"], one)
    run(["seqpipe", "preprocess", "bandwidth"], one)
    shutil.copytree(one / "data", two / "data")
    return {n: (folder, run(["seqpipe", "train", "bandwidth"], folder).stderr)
            for n, folder in ((1, one), (2, two))}


def test_two_processes_reach_the_quality_of_one(runs: dict[int, tuple[Path, str]]) -> None:
    data = runs[1][0] / "data/processed/bandwidth"
    test, train = whole(load_split_tensors(data, "test")), whole(load_split_tensors(data, "train"))
    mean_baseline = float(((test["y"] - train["y"].mean(0)) ** 2).mean())
    test_loss = {}
    for n, (folder, _) in runs.items():
        network, payload = checkpoint.load_model(folder / "models/bandwidth/model.pt", "bandwidth")
        assert set(payload["params"]) == {"model", "train"} and payload["params"]["train"]["nproc_per_node"] == n
        test_loss[n] = evaluate_loss(network, Regression(), test, 512, None, torch.device("cpu"))
    print(f"test MSE (scaled): 1 process {test_loss[1]:.4f}, 2 processes {test_loss[2]:.4f}, "
          f"train-mean baseline {mean_baseline:.4f}")
    assert max(test_loss.values()) < 0.1 * mean_baseline
    assert abs(test_loss[2] - test_loss[1]) <= 0.25 * test_loss[1]
    assert "DDP: 2 processes, backend gloo" in runs[2][1]
    assert "each of 2 ranks takes 1047 of 2094 samples per epoch (33 batches of 32)" in runs[2][1]
    assert "DDP" not in runs[1][1]


def test_rank_zero_alone_writes_checkpoints_history_and_log(runs: dict[int, tuple[Path, str]]) -> None:
    folder, stderr = runs[2]
    names = sorted(p.name for p in run_folder(folder, "bandwidth").iterdir())
    assert names == ["best.pt", "epoch_0013.pt", "epoch_0014.pt", "epoch_0015.pt", "last.pt"]
    history = checkpoint.load(folder / "models/bandwidth/model.pt")["history"]  # the curves evaluate plots
    assert [record["epoch"] for record in history] == list(range(1, EPOCHS + 1))
    log = (folder / "models/bandwidth/train.log").read_text()
    for text in (log, stderr):
        for epoch in range(1, EPOCHS + 1):
            assert len(re.findall(rf"bandwidth: epoch {epoch}/{EPOCHS} ", text)) == 1
    assert log.count("wrote models/bandwidth/model.pt") == 1
    card = (folder / "models/bandwidth/model_card.json").read_text()
    assert '"epochs_run": 15' in card


def test_sigterm_to_two_processes_saves_and_the_rerun_resumes_exactly(
        runs: dict[int, tuple[Path, str]], tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", {**TWO, "models.bandwidth.train.epochs": 200})
    shutil.copytree(runs[2][0] / "data", tmp_path / "data")
    # to `seqpipe train`, as DVC or a CI runner would, once the first epoch is saved
    proc = signal_when_exists(["seqpipe", "train", "bandwidth"], tmp_path,
                              tmp_path / "models/bandwidth/checkpoints/*/last.pt", signal.SIGTERM)
    last = run_folder(tmp_path, "bandwidth") / "last.pt"
    stderr = proc.stderr
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.count("SIGTERM at epoch") == 1 and "run again to resume" in stderr
    payload = checkpoint.load(last)
    assert payload["model"] == "bandwidth" and 1 <= payload["epoch"] < EPOCHS
    assert not (tmp_path / "models/bandwidth/model.pt").exists()

    write_params(tmp_path / "params.yaml", TWO)
    resumed = run(["seqpipe", "train", "bandwidth"], tmp_path)
    assert "resuming from" in resumed.stderr
    weights = checkpoint.load(tmp_path / "models/bandwidth/model.pt")["state_dict"]
    straight = checkpoint.load(runs[2][0] / "models/bandwidth/model.pt")["state_dict"]
    assert all(torch.equal(weights[k], straight[k]) for k in straight)  # = the uninterrupted run, bit for bit


def test_nproc_per_node_is_checked_with_the_key_named(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    write_params(path, tiny_overrides("bandwidth"))
    params = load_params(path, overrides={"models.bandwidth.train.nproc_per_node": 0})  # shape only
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(path))}: models\.bandwidth\.train\.nproc_per_node: "
                                          r"must be >= 1"):
        params.train("bandwidth")
    with pytest.raises(SeqpipeError, match=r"models\.bandwidth\.train\.nproc_per_node is 2 but 1 processes"):
        with distributed.process_group("bandwidth", 2, torch.device("cpu")):
            pass
    with pytest.raises(SeqpipeError, match=r"nproc_per_node is 2: each rank takes cuda:LOCAL_RANK"):
        distributed.check_launch("bandwidth", 2, torch.device("cuda", 1))
    if torch.cuda.device_count() < 2:
        with pytest.raises(SeqpipeError, match=r"nproc_per_node is 2 but only \d CUDA devices"):
            distributed.check_launch("bandwidth", 2, torch.device("cuda"))


# --- several machines: two "nodes" of one process each on this machine ---------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_nodes(folders: list[Path], *options: str) -> list[subprocess.Popen]:
    """`seqpipe train bandwidth --nnodes 2 --node-rank R` for R = 0, 1, node R in folders[R], each
    logging to node<R>.log beside its params. Node 1 starts once node 0 launches its torchrun, which
    hosts the rendezvous (as docs/scale-out.md says to): node 0 then waits for node 1 up to c10d's join
    timeout, however long either waits for core slots held by other trainings on this machine."""
    endpoint = f"127.0.0.1:{_free_port()}"
    procs: list[subprocess.Popen] = []
    for r, folder in enumerate(folders):
        if r == 1:
            deadline = time.monotonic() + NODE_TIMEOUT_S
            while "launching 1 of the 2 processes" not in (folders[0] / "node0.log").read_text():
                assert procs[0].poll() is None and time.monotonic() < deadline, (folders[0] / "node0.log").read_text()
                time.sleep(0.05)
        with open(folder / f"node{r}.log", "w") as log:
            procs.append(subprocess.Popen(
                ["seqpipe", "train", "bandwidth", "--nnodes", "2", "--node-rank", str(r), "--rdzv-endpoint",
                 endpoint, *options], cwd=folder, env=run_env(folder), stdout=log, stderr=subprocess.STDOUT))
    return procs


def _wait(procs: list[subprocess.Popen], folders: list[Path]) -> tuple[list[int], str]:
    """The nodes' exit codes and their output together (every node is stopped at the timeout)."""
    deadline = time.monotonic() + NODE_TIMEOUT_S
    try:
        codes = [proc.wait(timeout=max(deadline - time.monotonic(), 1)) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    return codes, "".join((folder / f"node{r}.log").read_text() for r, folder in enumerate(folders))


def _prepared(runs: dict[int, tuple[Path, str]], folder: Path, overrides: dict) -> Path:
    folder.mkdir(exist_ok=True)
    write_params(folder / "params.yaml", overrides)
    shutil.copytree(runs[1][0] / "data", folder / "data")
    return folder


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(folder / "models/bandwidth/model.pt")["state_dict"]


@pytest.mark.slow
def test_two_nodes_of_one_process_train_the_weights_of_one_node_of_two(
        runs: dict[int, tuple[Path, str]], tmp_path: Path) -> None:
    work = _prepared(runs, tmp_path / "shared", PER_NODE)  # both nodes in one folder: a shared file system
    codes, output = _wait(_start_nodes([work, work]), [work, work])
    assert codes == [0, 0], output
    straight = _weights(runs[2][0])
    weights = _weights(work)
    assert weights.keys() == straight.keys()
    assert all(torch.equal(weights[k], straight[k]) for k in straight)  # bit for bit: the same world size
    payload = checkpoint.load(work / "models/bandwidth/model.pt")
    assert payload["history"] == checkpoint.load(runs[2][0] / "models/bandwidth/model.pt")["history"]
    assert payload["training"]["nodes"] == 2 and payload["params"]["train"]["nproc_per_node"] == 1
    assert "DDP: 2 processes, backend gloo" in output
    assert "each of 2 ranks takes 1047 of 2094 samples per epoch (33 batches of 32)" in output
    assert output.count("wrote models/bandwidth/model.pt") == 1  # rank 0 alone, wherever it runs
    log = (work / "models/bandwidth/train.log").read_text()
    assert "launching 1 of the 2 processes (node 0 of 2" in log and "(node 1 of 2" not in log  # node 0's launcher
    assert all(len(re.findall(rf"bandwidth: epoch {e}/{EPOCHS} ", log)) == 1 for e in range(1, EPOCHS + 1))


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_is_restarted_and_ends_with_the_uninterrupted_weights(
        runs: dict[int, tuple[Path, str]], tmp_path: Path) -> None:
    work = _prepared(runs, tmp_path / "shared", PER_NODE)
    # --fresh too: a restarted worker resumes what its own launch wrote rather than starting over again
    procs = _start_nodes([work, work], "--max-restarts", "1", "--fresh")
    deadline = time.monotonic() + NODE_TIMEOUT_S
    while not glob.glob(str(work / "models/bandwidth/checkpoints/*/last.pt")):  # the first epoch is saved
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, _wait(procs, [work, work])
        time.sleep(0.02)
    writer = _worker(procs, rank=0)  # the worker that writes the checkpoints, killed during a later epoch
    os.kill(writer, signal.SIGKILL)
    codes, output = _wait(procs, [work, work])
    assert codes == [0, 0], output
    log = (work / "models/bandwidth/train.log").read_text()
    # the kill came after epoch `done` was saved and before epoch `done` + 1 was: in the middle of it
    resumed = re.findall(r"resuming from \S+/last\.pt at epoch (\d+) batch 0", log)
    assert len(resumed) == 1, log
    done = int(resumed[0]) - 1
    assert 1 <= done < EPOCHS, log
    assert "written by this launch before its workers were restarted" in log
    assert all(len(re.findall(rf"bandwidth: epoch {e}/{EPOCHS} ", log)) == 1 for e in range(done + 1, EPOCHS + 1))
    assert "lost the other ranks" in output and "internal error" not in output  # said by the survivor
    straight = _weights(runs[2][0])
    weights = _weights(work)
    assert all(torch.equal(weights[k], straight[k]) for k in straight)  # = the uninterrupted run, bit for bit
    history = checkpoint.load(work / "models/bandwidth/model.pt")["history"]
    assert history == checkpoint.load(runs[2][0] / "models/bandwidth/model.pt")["history"]


@pytest.mark.slow
def test_sigterm_to_one_node_stops_every_node_and_the_rerun_resumes_exactly(
        runs: dict[int, tuple[Path, str]], tmp_path: Path) -> None:
    work = _prepared(runs, tmp_path / "shared", PER_NODE)
    procs = _start_nodes([work, work], "--max-restarts", "1")
    deadline = time.monotonic() + NODE_TIMEOUT_S
    while not glob.glob(str(work / "models/bandwidth/checkpoints/*/last.pt")):
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, _wait(procs, [work, work])
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGTERM)  # node 1 alone, as a machine being shut down
    # every rank stops after the same batch and the other node's torchrun stops too, rather than
    # restarting its workers to wait at the rendezvous for a node that has gone
    codes, output = _wait(procs, [work, work])
    assert codes == [128 + signal.SIGTERM] * 2, output
    assert output.count("SIGTERM at epoch") == 1 and "run again to resume" in output
    assert not (work / "models/bandwidth/model.pt").exists()
    codes, output = _wait(_start_nodes([work, work]), [work, work])
    assert codes == [0, 0], output
    assert "resuming from" in output
    straight = _weights(runs[2][0])
    weights = _weights(work)
    assert all(torch.equal(weights[k], straight[k]) for k in straight)  # = the uninterrupted run, bit for bit


def _worker(procs: list[subprocess.Popen], rank: int) -> int:
    """The pid of the torchrun worker with global rank `rank` among the processes under `procs`."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        children.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(stat.parent.name))
    todo, found = [p.pid for p in procs], []
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            found.append(pid)
    assert len(found) == 1, found
    return found[0]


def test_nodes_that_do_not_share_the_folder_are_refused(runs: dict[int, tuple[Path, str]], tmp_path: Path) -> None:
    folders = [_prepared(runs, tmp_path / f"machine{r}", PER_NODE) for r in (0, 1)]
    codes, output = _wait(_start_nodes(folders), folders)
    assert codes == [1, 1], output
    assert len(error_lines(output)) == 1, output  # said once, by rank 0
    assert re.search(r"seqpipe: error: models/bandwidth/checkpoints/\w+: rank 1 on \S+ does not see the checkpoint "
                     r"folder that rank 0 on \S+ writes; run every node in the same folder on a shared file "
                     r"system", output), output
    assert not any((folder / "models/bandwidth/model.pt").exists() for folder in folders)


def test_launch_options_are_checked_with_the_option_named(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", PER_NODE)
    for options, env, message in [
            (["--nnodes", "2"], {}, ("--nnodes is 2: give --node-rank (or SEQPIPE_NODE_RANK) and --rdzv-endpoint "
                                     "(or SEQPIPE_RDZV_ENDPOINT) too (docs/scale-out.md#several-machines)")),
            (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], {},
             "--node-rank is 2 but --nnodes is 2: the nodes are 0 to 1"),
            (["--node-rank", "1"], {}, "--node-rank: only for a run on several machines (--nnodes above 1)"),
            ([], {"SEQPIPE_NNODES": "two"}, "SEQPIPE_NNODES: 'two' is not a whole number >= 1"),
            ([], {"SEQPIPE_NNODES": "2", "SEQPIPE_NODE_RANK": "5", "SEQPIPE_RDZV_ENDPOINT": "h:1"},
             "SEQPIPE_NODE_RANK is 5 but SEQPIPE_NNODES is 2: the nodes are 0 to 1")]:
        proc = subprocess.run(["seqpipe", "train", "bandwidth", *options], cwd=tmp_path, capture_output=True,
                              text=True, env={**run_env(tmp_path), **env}, timeout=120, check=False)
        assert (proc.returncode, error_lines(proc.stderr)) == (1, [f"seqpipe: error: {message}"]), proc.stderr
    proc = subprocess.run(["seqpipe", "train", "bandwidth", "--rdzv-endpoint", "node0"], cwd=tmp_path,
                          capture_output=True, text=True, env=run_env(tmp_path), timeout=120, check=False)
    assert proc.returncode == 2 and "argument --rdzv-endpoint: 'node0' is not HOST:PORT" in proc.stderr
    assert not (tmp_path / "models").exists()
