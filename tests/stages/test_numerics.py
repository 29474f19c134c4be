"""Same inputs, same bytes, whatever the CPU offers: with `numerics: portable`, train and evaluate give
byte-identical model.pt, metrics and plots whether the math libraries may use everything this CPU
has (AVX-512, AMX) or are held to AVX2 by their own dispatch switches, as on an AVX2-only CPU. With
`numerics: native` the same two runs differ, which shows the comparison can fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.numerics import AVX2_CPU  # the switches an AVX2-only CPU sets itself
from seqpipe import pipelines
from tests.conftest import file_hashes, run_env, tiny_overrides, write_params

OUTPUTS = ("models/{m}/model.pt", "models/{m}/model_card.json", "metrics/{m}.json", "plots/{m}")


def has_avx512() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " avx512f " in f" {flags} ".replace("\n", " ")


def seqpipe(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(["seqpipe", *args], cwd=cwd, env={**run_env(cwd), **env}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


def prepared(tmp_path: Path, numerics: str, models: tuple[str, ...]) -> Path:
    """A folder with tiny params and every model's processed data (data stages are shared by both runs)."""
    work = tmp_path / "data_ready"
    work.mkdir()
    overrides = {**tiny_overrides(*models), "numerics": numerics}
    overrides.update({f"models.{m}.train.num_threads": 2 for m in models})
    write_params(work / "params.yaml", overrides)
    for model in models:
        for stage in ("download", "preprocess"):
            seqpipe([stage, model], work, {})
    return work


def trained(base: Path, dest: Path, models: tuple[str, ...], env: dict[str, str]) -> dict[str, str]:
    """Train and evaluate every model in a copy of `base` under `env`; the hashes of what they wrote."""
    shutil.copytree(base, dest)
    hashes: dict[str, str] = {}
    for model in models:
        for stage in ("train", "evaluate"):
            seqpipe([stage, model], dest, env)
        for pattern in OUTPUTS:
            hashes.update(file_hashes(dest / pattern.format(m=model), dest))
    return hashes


# an LSTM model and a convolutional one by default; every model in the slow run
@pytest.mark.skipif(not has_avx512(), reason="needs a CPU with more than AVX2 to compare against")
@pytest.mark.parametrize("models", [
    pytest.param(("bandwidth", "ice_type"), id="lstm-and-cnn"),
    pytest.param(tuple(pipelines.names()), id="every-model", marks=pytest.mark.slow),
])
def test_portable_numerics_give_the_same_bytes_on_an_avx2_cpu(tmp_path: Path, models: tuple[str, ...]) -> None:
    base = prepared(tmp_path, "portable", models)
    native_cpu = trained(base, tmp_path / "native_cpu", models, {})
    avx2_cpu = trained(base, tmp_path / "avx2_cpu", models, AVX2_CPU)
    assert {k for k in native_cpu if k.endswith("model.pt")} == {f"models/{m}/model.pt" for m in models}
    assert {k for k, v in native_cpu.items() if avx2_cpu.get(k) != v} == set()


@pytest.mark.skipif(not has_avx512(), reason="needs a CPU with more than AVX2 to compare against")
def test_native_numerics_differ_by_cpu(tmp_path: Path) -> None:
    """The control: without the pins, the same comparison sees different weights."""
    models = ("bandwidth",)
    base = prepared(tmp_path, "native", models)
    native_cpu = trained(base, tmp_path / "native_cpu", models, {})
    avx2_cpu = trained(base, tmp_path / "avx2_cpu", models, AVX2_CPU)
    assert native_cpu["models/bandwidth/model.pt"] != avx2_cpu["models/bandwidth/model.pt"]
