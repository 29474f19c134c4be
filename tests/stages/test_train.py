"""The shared fit loop: exact resume, early stopping, checkpoints, interruption."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from seqpipe import checkpoint
from seqpipe.fit import fit
from seqpipe.networks import activation_bytes, build_network
from seqpipe.networks.lstm import LSTMRegressor
from seqpipe.params import TrainParams
from seqpipe.tasks import Regression

BASE = TrainParams(epochs=4, batch_size=16, lr=0.01, weight_decay=1e-5, optimizer="adam", scheduler="plateau",
                   scheduler_factor=0.5, scheduler_patience=1, grad_clip=1.0, early_stop_patience=10,
                   keep_checkpoints=2, amp=True, num_threads=0, nproc_per_node=1,
                   require_real_data=False)
ARGS = {"input_size": 1, "hidden_size": 8, "num_layers": 2, "dropout": 0.2, "output_size": 1}
IDENTITY = {"model": "toy", "network_module": "lstm", "network": "LSTMRegressor", "network_args": ARGS,
            "fingerprint": "abc", "params": {}}


def toy_data(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Next value of a noisy sine from 12 past values."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(400, dtype=torch.float32) * 0.3
    series = torch.sin(t) + 0.05 * torch.randn(400, generator=g)
    x = series.unfold(0, 12, 1)[:-1, :, None].contiguous()
    y = series[12:, None]
    return {"x": x[:300], "y": y[:300]}, {"x": x[300:], "y": y[300:]}


def new_model() -> LSTMRegressor:
    torch.manual_seed(0)
    model = build_network("lstm", "LSTMRegressor", ARGS)
    assert isinstance(model, LSTMRegressor)
    return model


def train(tmp: Path, tp: TrainParams, resume: str = "auto") -> tuple[LSTMRegressor, object]:
    model = new_model()
    train_data, val_data = toy_data()
    result = fit(model, Regression(), train_data, val_data, tp, seed=7, device=torch.device("cpu"),
                 checkpoint_dir=tmp, identity=IDENTITY, resume=resume)
    return model, result


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_gives_identical_weights(tmp_path: Path) -> None:
    straight, straight_result = train(tmp_path / "a", BASE)
    train(tmp_path / "b", dataclasses.replace(BASE, epochs=2))
    resumed, resumed_result = train(tmp_path / "b", BASE, resume="resume")
    assert resumed_result.resumed_from_epoch == 2
    assert same_weights(straight, resumed)
    assert [h["val_loss"] for h in straight_result.history] == [h["val_loss"] for h in resumed_result.history]


def test_same_seed_same_result(tmp_path: Path) -> None:
    first, _ = train(tmp_path / "a", dataclasses.replace(BASE, epochs=2))
    second, _ = train(tmp_path / "b", dataclasses.replace(BASE, epochs=2))
    assert same_weights(first, second)


def test_early_stop_restores_best_weights(tmp_path: Path) -> None:
    # lr so high that validation loss gets worse after the first epochs
    tp = dataclasses.replace(BASE, epochs=30, lr=0.3, early_stop_patience=2, scheduler="none", grad_clip=0.0)
    model, result = train(tmp_path, tp)
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + tp.early_stop_patience
    best = checkpoint.load(tmp_path / "best.pt")
    assert best["epoch"] == result.best_epoch
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in best["state_dict"].items())
    # the checkpoint names its network (module, class, args): it rebuilds without the training code
    rebuilt, payload = checkpoint.load_model(tmp_path / "best.pt", "toy")
    assert isinstance(rebuilt, LSTMRegressor) and payload["network_module"] == "lstm"
    assert same_weights(rebuilt, model)
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)


def test_keeps_last_n_epoch_checkpoints(tmp_path: Path) -> None:
    train(tmp_path, BASE)
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pt")) == ["epoch_0003.pt", "epoch_0004.pt"]
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()


def test_changed_params_start_fresh_in_auto_and_fail_with_resume(tmp_path: Path) -> None:
    train(tmp_path, dataclasses.replace(BASE, epochs=1))
    other = dict(IDENTITY, fingerprint="other")
    model = new_model()
    train_data, val_data = toy_data()
    with pytest.raises(checkpoint.CheckpointError, match="other params or data"):
        fit(model, Regression(), train_data, val_data, BASE, seed=7, device=torch.device("cpu"),
            checkpoint_dir=tmp_path, identity=other, resume="resume")
    result = fit(model, Regression(), train_data, val_data, dataclasses.replace(BASE, epochs=1), seed=7,
                 device=torch.device("cpu"), checkpoint_dir=tmp_path, identity=other, resume="auto")
    assert result.resumed_from_epoch is None


def test_truncated_checkpoint_is_a_clear_error_and_fresh_recovers(tmp_path: Path) -> None:
    train(tmp_path, dataclasses.replace(BASE, epochs=1))
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:200])
    with pytest.raises(checkpoint.CheckpointError, match=r"last\.pt: unreadable checkpoint.*--fresh"):
        train(tmp_path, BASE)
    _, result = train(tmp_path, dataclasses.replace(BASE, epochs=1), resume="fresh")
    assert result.resumed_from_epoch is None and len(result.history) == 1


def test_checkpoint_with_torch_optim_state_is_a_clear_error(tmp_path: Path) -> None:
    """A last.pt from before seqpipe.optim holds torch.optim's state layout: refused, and --fresh recovers."""
    train(tmp_path, dataclasses.replace(BASE, epochs=1))
    last = tmp_path / "last.pt"
    payload = {k: v for k, v in checkpoint.load(last).items() if k != "sha256"}
    model = new_model()
    reference = torch.optim.Adam(model.parameters(), lr=0.01)
    model(toy_data()[0]["x"][:4]).sum().backward()
    reference.step()
    payload["optimizer"] = reference.state_dict()
    checkpoint.save(last, payload)
    with pytest.raises(checkpoint.CheckpointError, match=r"last\.pt: its optimizer .*torch\.optim.*--fresh"):
        train(tmp_path, BASE)
    _, result = train(tmp_path, dataclasses.replace(BASE, epochs=1), resume="fresh")
    assert result.resumed_from_epoch is None


def test_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    train(tmp_path, dataclasses.replace(BASE, epochs=1))
    model = new_model()
    train_data, val_data = toy_data()
    with pytest.raises(checkpoint.CheckpointError, match="belongs to model 'toy', not 'other'"):
        fit(model, Regression(), train_data, val_data, BASE, seed=7, device=torch.device("cpu"),
            checkpoint_dir=tmp_path, identity=dict(IDENTITY, model="other"), resume="auto")


def test_nan_loss_stops_with_a_clear_error(tmp_path: Path) -> None:
    model = new_model()
    train_data, val_data = toy_data()
    train_data["y"][5] = float("nan")
    with pytest.raises(Exception, match="train loss is nan at epoch 1"):
        fit(model, Regression(), train_data, val_data, BASE, seed=7, device=torch.device("cpu"),
            checkpoint_dir=tmp_path, identity=IDENTITY, name="toy")


def test_one_cycle_warms_up_to_lr_then_anneals_per_batch(tmp_path: Path) -> None:
    tp = dataclasses.replace(BASE, scheduler="onecycle", epochs=4)   # 19 batches an epoch, peak at batch 23
    _, result = train(tmp_path, tp)
    lrs = [h["lr"] for h in result.history]   # as each epoch ends: just before the peak, then down
    assert tp.lr >= lrs[0] > 0.9 * tp.lr and lrs[0] > lrs[1] > lrs[2] > lrs[3]
    assert lrs[-1] < tp.lr / 1000


@pytest.mark.parametrize("module, class_name, args, sample", [
    ("lstm", "LSTMRegressor", {"input_size": 3, "hidden_size": 8, "num_layers": 2, "dropout": 0.1,
                               "output_size": 2, "bidirectional": True}, (12, 3)),
    ("resnet", "ResNetClassifier", {"in_channels": 2, "num_classes": 3, "blocks_per_stage": [1, 1],
                                    "base_width": 4}, (2, 16, 16)),
    ("convlstm", "ConvLSTMForecaster", {"hidden_channels": 4, "kernel_size": 3, "patch": 2, "horizon": 2},
     (5, 8, 8)),
    ("siamese", "SiameseChangeNet", {"in_channels": 2, "base_channels": 4, "depth": 2}, (4, 16, 16)),
])
def test_activation_bytes_extrapolate_closely(module: str, class_name: str, args: dict, sample: tuple) -> None:
    """The memory check measures a batch's saved activations at 4 and 8 samples and extrapolates: the
    figure for 48 samples is within -5%..+20% of a direct measurement of 48 (the LSTM kernel's workspace
    grows in steps, which small batches overstate), for every kind of network (BatchNorm's per-channel
    saves included), and the caller's random state is untouched."""
    x = torch.randn(48, *sample)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    extrapolated = activation_bytes(module, class_name, args, x, 48)
    assert torch.equal(torch.get_rng_state(), before)
    model = build_network(module, class_name, args).train()
    weights = {id(p) for p in model.parameters()}
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if id(tensor) not in weights and id(tensor._base) not in weights:
            saved += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x)
    assert saved > 0 and 0.95 * saved <= extrapolated <= 1.2 * saved, (extrapolated, saved)


def test_windows_cut_on_demand_train_to_the_same_weights_as_the_materialised_tensors(tmp_path: Path) -> None:
    """The toy series stored once and cut per batch (seqpipe.data.windows): fit's batches, validation and
    weights are those of the materialised windows, bit for bit."""
    import json

    import numpy as np

    from seqpipe.data.series import save_splits
    from seqpipe.data.windows import cut, stored_arrays
    from seqpipe.stages.splits import TensorWindows, load_split_tensors

    train_data, val_data = toy_data()
    series = torch.cat([train_data["x"][0, :, 0], train_data["y"][:, 0], val_data["y"][:, 0]])[:, None]
    series = series.numpy()
    starts = {"train": np.arange(300), "val": np.arange(300, len(series) - 12)}
    arrays = save_splits(tmp_path, stored_arrays({"series": series}, starts))
    cuts = {"x": cut("series", 0, 12), "y": cut("series", 12)}
    (tmp_path / "stats.json").write_text(json.dumps({"windows": cuts, "arrays": arrays}))
    lazy = {split: load_split_tensors(tmp_path, split) for split in ("train", "val")}
    assert isinstance(lazy["train"]["x"], TensorWindows) and torch.equal(lazy["val"]["x"][:], val_data["x"])
    tp = dataclasses.replace(BASE, epochs=2)
    models = []
    for data, folder in (((train_data, val_data), "eager"), ((lazy["train"], lazy["val"]), "lazy")):
        models.append(new_model())
        fit(models[-1], Regression(), *data, tp, seed=7, device=torch.device("cpu"),
            checkpoint_dir=tmp_path / folder, identity=IDENTITY)
    assert same_weights(*models)
