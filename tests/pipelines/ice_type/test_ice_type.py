"""ice_type: GeoTIFF patch sources, preprocess, classification task, ResNet, evaluate and predict.

Fixtures write tiny (16x16, 3-band) real GeoTIFFs with rasterio into tmp_path; the stages run on
them for real in `workdir` (the repository's params.yaml with tests/tiny_params.yaml applied).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
import yaml
from torch.nn import functional as F
from rasterio.crs import CRS

from seqpipe import layout, pipelines
from seqpipe.errors import SeqpipeError
from seqpipe.io import read_json
from seqpipe.metrics import detail_file
from seqpipe.networks import build_network
from seqpipe.params import ParamsError, load_params, set_dotted
from seqpipe.pipelines.ice_type import DEPTHS, ResNetParams
from seqpipe.pipelines.ice_type.download import IceTypeLocalParams, copy_local, north_up
from seqpipe.pipelines.ice_type.labels import CLASSES
from seqpipe.pipelines.ice_type.preprocess import band_moments
from seqpipe.pipelines.ice_type.train import augmentation
from seqpipe.stages import download, evaluate, preprocess, train
from seqpipe.tasks import build_task
from tests.conftest import REPO
from tests.pipelines.conftest import assert_one_error_line

SPEC = pipelines.get("ice_type")


def write_tif(path: Path, image: np.ndarray) -> None:
    """A (bands, h, w) uint8 patch as a GeoTIFF in EPSG:3411."""
    with rasterio.open(path, "w", driver="GTiff", height=image.shape[1], width=image.shape[2],
                       count=image.shape[0], dtype="uint8", crs=CRS.from_epsg(3411),
                       transform=north_up(-1e6, 1e6, 100.0)) as dst:
        dst.write(image)


@pytest.fixture
def local_patches(tmp_path: Path) -> Path:
    """30 seeded 16x16 patches (brightness by class) + labels.csv + one unlabelled file, in tmp/local/."""
    folder = tmp_path / "local"
    (folder / "tifs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        label = i % 3
        write_tif(folder / "tifs" / f"p{i:02d}.tif",
                  rng.integers(40 * label, 40 * label + 100, size=(3, 16, 16)).astype(np.uint8))
        rows.append({"file": f"p{i:02d}.tif", "label": CLASSES[label]})
    write_tif(folder / "tifs" / "unlabelled.tif", np.zeros((3, 16, 16), np.uint8))
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder


def use_local(folder: Path, labels: Path | None = None) -> None:
    """Point params.yaml of the current folder at a local patch folder."""
    raw = yaml.safe_load(Path("params.yaml").read_text())
    set_dotted(raw, "models.ice_type.download.source", "local")
    set_dotted(raw, "models.ice_type.download.local.patches", str(folder / "tifs"))
    set_dotted(raw, "models.ice_type.download.local.labels", str(labels or folder / "labels.csv"))
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_synthetic_download_is_georeferenced_and_byte_deterministic(workdir: Path) -> None:
    params = load_params()
    first = download.run(SPEC, params)
    second = download.run(SPEC, params)
    assert first == second and len(first["files"]) == 61        # 60 GeoTIFFs + labels.csv
    labels = pd.read_csv(layout.raw_dir("ice_type") / "labels.csv")
    assert set(labels["label"]) == set(CLASSES)
    with rasterio.open(layout.raw_dir("ice_type") / "patches" / labels["file"][0]) as src:
        assert (src.count, src.height, src.width, src.dtypes[0]) == (3, 16, 16, "uint8")
        assert src.crs.to_epsg() == 3411 and src.transform.a == 100.0


def test_preprocess_reads_patches_back_stratified_with_train_class_weights(workdir: Path) -> None:
    params = load_params()
    download.run(SPEC, params)
    stats = preprocess.run(SPEC, params)
    data = layout.processed_dir("ice_type")
    x_train, y_train = np.load(data / "x_train.npy"), np.load(data / "y_train.npy")
    assert x_train.shape[1:] == (3, 16, 16) and x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert sum(len(np.load(data / f"y_{s}.npy")) for s in ("train", "val", "test")) == 60
    np.testing.assert_allclose(x_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    counts = np.bincount(y_train, minlength=3)
    np.testing.assert_allclose(stats["class_weights"], len(y_train) / (3 * counts))
    task = build_task("classification", read_json(data / "stats.json"))
    np.testing.assert_allclose(task.weight.numpy(), len(y_train) / (3 * counts), rtol=1e-6)
    assert stats["crs"] == "EPSG:3411" and stats["provenance"]["synthetic"] is True
    first = {k: v["sha256"] for k, v in stats["arrays"].items()}
    assert {k: v["sha256"] for k, v in preprocess.run(SPEC, params)["arrays"].items()} == first


def test_local_source_copies_labelled_patches_only(workdir: Path, local_patches: Path) -> None:
    use_local(local_patches)
    params = load_params()
    manifest = download.run(SPEC, params)
    assert manifest["synthetic"] is False and "patches/unlabelled.tif" not in manifest["files"]
    assert len(manifest["files"]) == 31
    stats = preprocess.run(SPEC, params)
    assert stats["class_counts"]["train"] == {c: 6 for c in CLASSES}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda f: f.assign(label=f["label"].replace("thin_ice", "slush")), "unknown label 'slush' at data row 2"),
    (lambda f: f.drop(columns="label"), "missing column(s) label"),
    (lambda f: pd.concat([f, pd.DataFrame({"file": ["gone.tif"], "label": ["thin_ice"]})]), "gone.tif: not found"),
    (lambda f: pd.concat([f, f.head(1)]), "'p00.tif' is listed more than once"),
])
def test_bad_labels_csv_is_one_line_naming_the_file(workdir: Path, local_patches: Path, edit, message) -> None:
    bad = local_patches / "bad_labels.csv"
    edit(pd.read_csv(local_patches / "labels.csv")).to_csv(bad, index=False)
    use_local(local_patches, bad)
    with pytest.raises(SeqpipeError) as info:
        download.run(SPEC, load_params())
    text = str(info.value)
    assert message in text and "\n" not in text and ("bad_labels.csv" in text or "gone.tif" in text)
    assert not layout.raw_dir("ice_type").exists()           # nothing partial left behind


def test_corrupt_geotiff_fails_preprocess_naming_the_file(workdir: Path, local_patches: Path) -> None:
    (local_patches / "tifs" / "p04.tif").write_bytes(b"II*\x00 truncated")
    use_local(local_patches)
    params = load_params()
    download.run(SPEC, params)
    with pytest.raises(SeqpipeError) as info:
        preprocess.run(SPEC, params)
    assert "p04.tif: unreadable GeoTIFF" in str(info.value) and "\n" not in str(info.value)
    assert not layout.processed_dir("ice_type").exists()


def test_cli_error_is_one_line_and_nonzero(workdir: Path, local_patches: Path) -> None:
    pd.DataFrame({"file": ["p00.tif"], "label": ["pack_ice"]}).to_csv(local_patches / "x.csv", index=False)
    use_local(local_patches, local_patches / "x.csv")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}   # this checkout's code, not another install
    proc = subprocess.run([sys.executable, "-m", "seqpipe.cli", "download", "ice_type"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert_one_error_line(proc.stderr, f"seqpipe: error: {local_patches / 'x.csv'}: unknown label 'pack_ice' "
                                       f"at data row 1 (allowed: {', '.join(CLASSES)})")


@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_resnet_forward_backward_finite(depth: int) -> None:
    torch.manual_seed(0)
    name, args = SPEC.network(ResNetParams(depth=depth, base_width=4, dropout=0.1),
                              {"bands": 3, "classes": CLASSES})
    net = build_network(SPEC.network_module, name, args)
    x = torch.randn(4, 3, 16, 16)
    out = net(x)
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    F.cross_entropy(out, torch.tensor([0, 1, 2, 0])).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_resnet_depth_param_is_checked() -> None:
    with pytest.raises(ParamsError, match="depth: must be one of 10, 18, 34"):
        ResNetParams(depth=12, base_width=16, dropout=0.0)


def test_augment_keeps_shapes_labels_and_pixel_values() -> None:
    stats = {"class_weights": [1.0, 2.0, 1.5], "band_mean": [100.0, 110.0, 120.0], "band_std": [20.0, 20.0, 25.0]}
    augment = augmentation(stats)
    x = torch.randn(32, 3, 16, 16)
    y = torch.randint(0, 3, (32,))
    torch.manual_seed(1)
    out = augment({"x": x, "y": y})
    torch.manual_seed(1)
    again = augment({"x": x, "y": y})
    assert out["x"].shape == x.shape and torch.equal(out["y"], y) and torch.equal(out["x"], again["x"])
    assert not torch.equal(out["x"], x)
    augment.brightness = 0.0                      # flips and rotations only: each patch keeps its pixels
    moved = augment({"x": x, "y": y})["x"]
    torch.testing.assert_close(moved.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    augment.brightness = 0.3                      # brightness scales physical values by one factor per patch
    mean, std = torch.tensor(stats["band_mean"])[:, None, None], torch.tensor(stats["band_std"])[:, None, None]
    flat = torch.full((8, 3, 4, 4), 0.5)
    bright = augment({"x": flat, "y": y[:8]})["x"]
    ratio = (bright * std + mean) / (flat * std + mean)
    assert torch.allclose(ratio, ratio[:, :1, :1, :1].expand_as(ratio), rtol=1e-4)
    assert ((ratio > 0.7 - 1e-4) & (ratio < 1.3 + 1e-4)).all()


def test_tiny_pipeline_train_evaluate_predict(workdir: Path) -> None:
    params = load_params()
    download.run(SPEC, params)
    preprocess.run(SPEC, params)
    train.run(SPEC, params)
    metrics = evaluate.run(SPEC, params)
    keys = {"accuracy", "macro_f1", "per_class"}
    assert set(metrics["test"]) == keys and set(metrics["baselines"]) == {"majority", "logistic"}
    assert all(set(m) == keys for m in metrics["baselines"].values())
    assert set(metrics["test"]["per_class"]) == set(CLASSES)
    confusion = pd.read_csv(layout.eval_plots_dir("ice_type") / "confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == metrics["n_test"]
    # the stage wrote the detail beside the plots and only the headline to metrics/ice_type.json
    assert read_json(detail_file("ice_type")) == metrics
    assert read_json(layout.metrics_file("ice_type")) == {
        "test": {k: metrics["test"][k] for k in ("accuracy", "macro_f1")},
        "baselines": {b: {k: m[k] for k in ("accuracy", "macro_f1")} for b, m in metrics["baselines"].items()}}
    from seqpipe.cli import main

    patches = layout.raw_dir("ice_type") / "patches"
    assert main(["predict", "ice_type", "--input", str(patches), "--output", "pred.csv"]) == 0
    pred = pd.read_csv("pred.csv")
    assert len(pred) == 60 and set(pred["predicted"]) <= set(CLASSES)
    np.testing.assert_allclose(pred[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1.0, atol=1e-3)
    assert main(["predict", "ice_type", "--input", str(patches / "patch_00000.tif"), "--output", "one.csv"]) == 0
    assert pd.read_csv("one.csv")["file"].tolist() == ["patch_00000.tif"]
    write_tif(workdir / "wrong.tif", np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(SeqpipeError, match=r"wrong.tif: shape \(bands, h, w\) \(3, 8, 8\) differs from \(3, 16, 16\)"):
        SPEC.stage("predict").predict(*_load(), _args(workdir / "wrong.tif"), params)


def _load() -> tuple:
    from seqpipe.checkpoint import load_model

    return load_model(layout.model_file("ice_type"), "ice_type")


def _args(path: Path):
    from argparse import Namespace

    return Namespace(model="ice_type", input=path, output=Path("never.csv"))


def test_copy_local_requires_both_paths(tmp_path: Path) -> None:
    with pytest.raises(SeqpipeError, match="download.local.labels: empty"):
        copy_local(IceTypeLocalParams(patches=str(tmp_path), labels=""), tmp_path / "out")


@pytest.mark.parametrize(("n", "bands", "size", "chunk"), [(50, 3, 8, 7), (33, 1, 5, 100), (64, 4, 16, 1)])
def test_band_moments_read_in_chunks_are_numpys_whole_array_moments_bit_for_bit(n: int, bands: int, size: int,
                                                                                 chunk: int) -> None:
    x = np.random.default_rng(n).gamma(2.0, 50.0, size=(n, bands, size, size)).astype(np.float32)
    rows = np.sort(np.random.default_rng(1).choice(n, size=n * 2 // 3, replace=False))
    whole = x[rows].astype(np.float64)
    mean, std = band_moments(x, rows, chunk)
    assert mean.tobytes() == whole.mean(axis=(0, 2, 3)).tobytes()
    assert std.tobytes() == whole.std(axis=(0, 2, 3)).tobytes()
