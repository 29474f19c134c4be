"""params.yaml validation: every problem names the file and the dotted key, before any work.

`load_params` checks the shape (seed, device, the model names, five sections per model); each stage
parses the sections it reads with `Params.section`, strictly and with types.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from seqpipe import pipelines
from seqpipe.params import SECTIONS, ParamsError, TrainParams, load_params
from tests.conftest import REPO, error_lines, run, write_params

NAMES = pipelines.names()


def section_class(model: str, section: str) -> type:
    """The dataclass the stage reading `models.<model>.<section>` parses it with."""
    spec = pipelines.get(model)
    if section == "train":
        return TrainParams
    if section == "model":
        return spec.model_params
    return getattr(spec.stage(section), f"{section.capitalize()}Params")


def test_repository_params_load() -> None:
    params = load_params(REPO / "params.yaml", NAMES)
    assert params.seed == 42
    assert set(params.models) == set(NAMES) >= {"freq_filter", "bandwidth"}
    for model in NAMES:  # every section of every model parses, strictly
        for section in SECTIONS:
            parsed = params.section(model, section, section_class(model, section))
            assert isinstance(parsed, section_class(model, section))


# (dotted key, bad value, the section a stage reads it in (None: load_params itself), message)
BAD = [
    ("models.bandwidth.train.ephocs", 3, "train",
     "models.bandwidth.train.ephocs: unknown key (did you mean 'epochs'?)"),
    ("models.bandwidth.train.lerning_rate", 0.1, "train",
     "models.bandwidth.train.lerning_rate: unknown key (allowed: epochs, batch_size, lr,"),
    ("models.bandwidth.train.lr", "fast", "train", "models.bandwidth.train.lr: expected a number, got str 'fast'"),
    ("models.bandwidth.train.epochs", -3, "train", "models.bandwidth.train.epochs: must be >= 1, got -3"),
    ("models.bandwidth.train.epochs", 2.5, "train", "models.bandwidth.train.epochs: expected an integer"),
    ("models.bandwidth.train.amp", 1, "train", "models.bandwidth.train.amp: expected bool"),
    ("models.bandwidth.train.optimizer", "sgd", "train",
     "models.bandwidth.train.optimizer: must be one of adam, adamw"),
    ("models.bandwidth.model.hidden_size", 0, "model", "models.bandwidth.model.hidden_size: must be >= 1"),
    ("models.bandwidth.preprocess.window", 1, "preprocess", "models.bandwidth.preprocess.window: must be >= 2"),
    ("models.bandwidth.preprocess.target_columns", ["nope"], "preprocess",
     "models.bandwidth.preprocess.feature_columns: must include"),
    ("models.freq_filter.download.source", "ftp", "download",
     "models.freq_filter.download.source: must be one of synthetic, local"),
    ("models.freq_filter.download.synthetic.frequencies_hz", [1.0, 30.0], "download",
     "models.freq_filter.download.synthetic.frequencies_hz: every frequency must lie in"),
    ("models.freq_filter.download.synthetic.n_seris", 40, "download",
     "models.freq_filter.download.synthetic.n_seris: unknown key (did you mean 'n_series'?)"),
    ("models.resnet_9000", {}, None, "models.resnet_9000: unknown key (allowed: " + ", ".join(NAMES) + ")"),
    ("models.bandwidth.trian", {}, None, "models.bandwidth.trian: unknown key (did you mean 'train'?)"),
    ("models.bandwidth", [], None, "models.bandwidth: must be a mapping"),
    ("device", "tpu", None, "device: must be auto, cpu, cuda or cuda:N"),
    ("seed", True, None, "seed: expected an integer"),
    ("sead", 1, None, "sead: unknown key (did you mean 'seed'?)"),
]


@pytest.mark.parametrize(("key", "value", "section", "message"), BAD, ids=[f"{k}={v!r}" for k, v, _, _ in BAD])
def test_bad_params_name_file_and_key(tmp_path: Path, key: str, value: object, section: str | None,
                                      message: str) -> None:
    path = tmp_path / "params.yaml"
    write_params(path, {key: value})
    with pytest.raises(ParamsError) as info:
        params = load_params(path, NAMES)
        assert section is not None, f"load_params accepted {key}={value!r}"
        model = key.split(".")[1]
        for other in SECTIONS:  # the other sections of the model still parse: the error is in this one
            if other != section:
                params.section(model, other, section_class(model, other))
        params.section(model, section, section_class(model, section))
    assert str(info.value).startswith(f"{path}: "), info.value
    assert message in str(info.value)


def test_missing_key_is_an_error(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    del raw["models"]["bandwidth"]["train"]["grad_clip"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    params = load_params(path, NAMES)
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(path))}: models\.bandwidth\.train\.grad_clip: missing"):
        params.train("bandwidth")


@pytest.mark.parametrize(("drop", "message"), [
    ("seed", "seed: missing"),
    ("models.bandwidth.evaluate", "models.bandwidth.evaluate: missing section"),
    ("models.bandwidth", "models.bandwidth: missing section"),
])
def test_missing_top_level_key_or_section(tmp_path: Path, drop: str, message: str) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    *parents, leaf = drop.split(".")
    node = raw
    for part in parents:
        node = node[part]
    del node[leaf]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError) as info:
        load_params(path, NAMES)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), info.value


def test_section_of_a_model_params_yaml_lacks(tmp_path: Path) -> None:
    """Without `models=` the shape check does not know the model folders; reading the section names it."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    del raw["models"]["bandwidth"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    params = load_params(path)
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(path))}: models\.bandwidth: missing section"):
        params.train("bandwidth")


@pytest.mark.parametrize("text", ["seed: [1, 2\n", "- just\n- a list\n"])
def test_bad_yaml_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as info:
        load_params(path, NAMES)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(tmp_path / 'nope.yaml'))}: not found"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("command", "key", "value", "message"), [
    ("train", "models.bandwidth.train.lr", "fast", "models.bandwidth.train.lr: expected a number, got str 'fast'"),
    ("train", "models.bandwidth.model.num_layers", 0, "models.bandwidth.model.num_layers: must be >= 1"),
    ("download", "models.bandwidth.download.source", "ftp", "models.bandwidth.download.source: must be one of"),
    ("download", "device", "tpu", "device: must be auto, cpu, cuda or cuda:N"),
])
def test_cli_reports_bad_params_in_one_line_and_writes_nothing(tmp_path: Path, command: str, key: str,
                                                               value: object, message: str) -> None:
    write_params(tmp_path / "params.yaml", {key: value})
    proc = run(["seqpipe", command, "bandwidth"], cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and error_lines(proc.stderr) == lines, proc.stderr
    assert lines[0].startswith(f"seqpipe: error: params.yaml: {message}"), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no data/, models/ or train.log


def test_cli_unknown_model(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", {})
    proc = run(["seqpipe", "train", "nope"], cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "unknown model 'nope'" in proc.stderr
    assert not (tmp_path / "models").exists()


def test_setting_one_key_as_dvc_exp_run_does_changes_one_line(tmp_path: Path) -> None:
    """params.yaml is in the format DVC writes back (block lists, single quotes), so `dvc exp run -S`
    (dvc.utils.hydra.apply_overrides) changes exactly the line it sets, and keeps every comment."""
    from dvc.utils.hydra import apply_overrides

    original = (REPO / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(original)
    apply_overrides(path, ["models.bandwidth.train.lr=0.0005"])
    changed = [(a, b) for a, b in zip(original.splitlines(), path.read_text().splitlines()) if a != b]
    assert len(original.splitlines()) == len(path.read_text().splitlines())
    assert len(changed) == 1 and changed[0][1].split("#")[0].strip() == "lr: 0.0005", changed
