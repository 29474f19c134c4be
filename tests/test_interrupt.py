"""SIGTERM / SIGINT during `seqpipe train`: a loadable checkpoint, a non-zero exit, then a resume."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from seqpipe import checkpoint
from tests.conftest import run, run_env, write_params, tiny_overrides


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_and_rerun_resumes(tmp_path: Path, sig: signal.Signals) -> None:
    overrides = {**tiny_overrides("bandwidth"), "models.bandwidth.download.synthetic.n_rows": 3000,
                 "models.bandwidth.train.epochs": 50, "models.bandwidth.train.early_stop_patience": 50}
    write_params(tmp_path / "params.yaml", overrides)
    run(["seqpipe", "download", "bandwidth"], tmp_path)
    run(["seqpipe", "preprocess", "bandwidth"], tmp_path)
    proc = subprocess.Popen(["seqpipe", "train", "bandwidth"], cwd=tmp_path, env=run_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "models/bandwidth/checkpoints/last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline:  # wait for the first epoch
        time.sleep(0.2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr
    assert f"{sig.name} at epoch" in stderr and "run again to resume" in stderr
    payload = checkpoint.load(last)
    assert payload["model"] == "bandwidth" and payload["epoch"] >= 1
    assert not (tmp_path / "models/bandwidth/model.pt").exists()

    write_params(tmp_path / "params.yaml", {**overrides, "models.bandwidth.train.epochs": payload["epoch"] + 1})
    resumed = run(["seqpipe", "train", "bandwidth"], tmp_path)
    assert "resuming from" in resumed.stderr
    assert (tmp_path / "models/bandwidth/model.pt").exists()
