"""SIGTERM / SIGINT during `seqpipe train`: a loadable checkpoint, a non-zero exit, then a resume."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from seqpipe import checkpoint
from tests.conftest import run, run_folder, signal_when_exists, tiny_overrides, write_params


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_and_rerun_resumes(tmp_path: Path, sig: signal.Signals) -> None:
    overrides = {**tiny_overrides("bandwidth"), "models.bandwidth.download.synthetic.n_rows": 3000,
                 "models.bandwidth.train.epochs": 50, "models.bandwidth.train.early_stop_patience": 50,
                 "models.bandwidth.train.scheduler": "plateau"}  # epochs not in the fingerprint: it can be extended
    write_params(tmp_path / "params.yaml", overrides)
    run(["seqpipe", "download", "bandwidth"], tmp_path)
    run(["seqpipe", "preprocess", "bandwidth"], tmp_path)
    proc = signal_when_exists(["seqpipe", "train", "bandwidth"], tmp_path,
                              tmp_path / "models/bandwidth/checkpoints/*/last.pt", sig)
    last = run_folder(tmp_path, "bandwidth") / "last.pt"
    stderr = proc.stderr
    assert proc.returncode == 128 + sig, stderr
    assert f"{sig.name} at epoch" in stderr and "run again to resume" in stderr
    payload = checkpoint.load(last)
    assert payload["model"] == "bandwidth" and payload["network_module"] == "forecaster" and payload["epoch"] >= 1
    assert not (tmp_path / "models/bandwidth/model.pt").exists()

    write_params(tmp_path / "params.yaml", {**overrides, "models.bandwidth.train.epochs": payload["epoch"] + 1})
    resumed = run(["seqpipe", "train", "bandwidth"], tmp_path)
    assert "resuming from" in resumed.stderr
    assert (tmp_path / "models/bandwidth/model.pt").exists()
