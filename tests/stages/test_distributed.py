"""Multi-process training: real `seqpipe train` under real torchrun with a gloo process group (CPU)."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest
import torch

from seqpipe import checkpoint, distributed
from seqpipe.errors import SeqpipeError
from seqpipe.fit import evaluate_loss
from seqpipe.params import ParamsError, load_params
from seqpipe.stages.splits import load_split_tensors, whole
from seqpipe.tasks import Regression
from tests.conftest import run, run_folder, signal_when_exists, tiny_overrides, write_params

EPOCHS = 15
LR = 0.003  # one process; two take 2 x LR (linear scaling: each step sees 2 x batch_size samples)
OVERRIDES = {**tiny_overrides("bandwidth"), "models.bandwidth.download.synthetic.n_rows": 3000,
             "models.bandwidth.train.epochs": EPOCHS, "models.bandwidth.train.early_stop_patience": 50,
             "models.bandwidth.train.scheduler": "plateau"}  # epochs not in the fingerprint: a run can be extended
TWO = {**OVERRIDES, "models.bandwidth.train.lr": 2 * LR, "models.bandwidth.train.nproc_per_node": 2}


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
