"""params.yaml validation: every problem names the file and the dotted key, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seqpipe.params import ParamsError, load_params
from tests.conftest import REPO, run, write_params


def test_repository_params_load() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.seed == 42
    assert set(params.models) >= {"freq_filter", "bandwidth"}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("models.bandwidth.train.ephocs", 3, "models.bandwidth.train.ephocs: unknown key (did you mean 'epochs'?)"),
    ("models.bandwidth.train.lerning_rate", 0.1, "models.bandwidth.train.lerning_rate: unknown key (allowed: epochs, batch_size, lr,"),
    ("models.bandwidth.train.lr", "fast", "models.bandwidth.train.lr: expected a number, got str 'fast'"),
    ("models.bandwidth.train.epochs", -3, "models.bandwidth.train.epochs: must be >= 1, got -3"),
    ("models.bandwidth.train.epochs", 2.5, "models.bandwidth.train.epochs: expected an integer"),
    ("models.bandwidth.train.amp", 1, "models.bandwidth.train.amp: expected bool"),
    ("models.bandwidth.train.optimizer", "sgd", "models.bandwidth.train.optimizer: must be one of adam, adamw"),
    ("models.bandwidth.preprocess.window", 1, "models.bandwidth.preprocess.window: must be >= 2"),
    ("models.bandwidth.preprocess.target_columns", ["nope"], "models.bandwidth.preprocess.feature_columns: must include"),
    ("models.freq_filter.download.source", "ftp", "models.freq_filter.download.source: must be one of synthetic, local"),
    ("models.freq_filter.download.synthetic.frequencies_hz", [1.0, 30.0], "frequencies_hz: every frequency must lie in"),
    ("models.resnet_9000", {}, "models.resnet_9000: unknown model"),
    ("device", "tpu", "device: must be auto, cpu, cuda or cuda:N"),
    ("seed", True, "seed: expected an integer"),
])
def test_bad_params_name_file_and_key(tmp_path: Path, key: str, value: object, message: str) -> None:
    path = tmp_path / "params.yaml"
    write_params(path, {key: value})
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_key_is_an_error(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    del raw["models"]["bandwidth"]["train"]["grad_clip"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"models\.bandwidth\.train\.grad_clip: missing"):
        load_params(path)


def test_cli_reports_bad_params_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", {"models.bandwidth.train.lr": "fast"})
    proc = run(["seqpipe", "download", "bandwidth"], cwd=tmp_path, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == ["seqpipe: error: params.yaml: models.bandwidth.train.lr: expected a number, got str 'fast'"]
    assert not (tmp_path / "data").exists()


def test_cli_unknown_model(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", {})
    proc = run(["seqpipe", "train", "nope"], cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "unknown model 'nope'" in proc.stderr
    assert not (tmp_path / "models").exists()
