"""1-2. Our trainer vs a loop written the way the original scripts were, on the freq_filter LSTM.

Same model, same data, same epochs and optimizer settings, alternating runs. The reference loop:
TensorDataset + DataLoader(shuffle=True), per-batch .to(device), batch 64, validation every epoch.
Also: the training step's achieved FLOP/s against the machine's dense-matmul FLOP/s.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import matmul_flops, median, timed
from seqpipe.fit import evaluate_loss, fit
from seqpipe.networks import build_network
from seqpipe.params import Params
from seqpipe.stages.train import load_split_tensors
from seqpipe.tasks import Regression


def reference_loop(model: nn.Module, train: dict, val: dict, epochs: int, lr: float, weight_decay: float,
                   batch_size: int, seed: int) -> float:
    """The original scripts' loop, kept as they wrote it. Returns the final validation loss."""
    torch.manual_seed(seed)
    device = torch.device("cpu")
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=3)
    train_loader = DataLoader(TensorDataset(train["x"], train["y"]), batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(val["x"], val["y"]), batch_size=batch_size, shuffle=False)
    val_loss = float("nan")
    for _ in range(epochs):
        model.train()
        for batch_x, batch_y in train_loader:
            batch_x, batch_y = batch_x.to(device), batch_y.to(device)
            loss = criterion(model(batch_x), batch_y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for batch_x, batch_y in val_loader:
                total += criterion(model(batch_x.to(device)), batch_y.to(device)).item()
        val_loss = total / len(val_loader)
        scheduler.step(val_loss)
    return val_loss


def lstm_train_flops(args: dict[str, Any], batch: int, seq_len: int) -> float:
    """Analytic FLOPs of one training step (forward + backward = 3x forward) of LSTMRegressor."""
    directions = 2 if args.get("bidirectional") else 1
    h, flops, width = args["hidden_size"], 0.0, args["input_size"]
    for _ in range(args["num_layers"]):
        flops += directions * 2 * 4 * h * (width + h) * seq_len * batch
        width = h * directions
    flops += 2 * width * args["output_size"] * (seq_len if args.get("seq2seq") else 1) * batch
    return 3 * flops


def run(params: Params, data_dir: Path, network: tuple[str, dict], epochs: int, repeats: int) -> dict:
    tp = dataclasses.replace(params.train("freq_filter"), epochs=epochs, early_stop_patience=epochs + 1)
    train, val = load_split_tensors(data_dir, "train"), load_split_tensors(data_dir, "val")
    n = len(train["x"]) * epochs
    identity = {"model": "freq_filter", "network_module": "lstm", "network": network[0], "network_args": network[1],
                "fingerprint": "bench", "params": {}}
    ours, reference = [], []
    for repeat in range(repeats):  # alternate, so drift in machine load hits both alike
        seed = params.seed + repeat  # a new init and shuffle per repeat: the loss medians are over seeds
        torch.manual_seed(seed)
        model = build_network("lstm", *network)
        with tempfile.TemporaryDirectory() as tmp:
            seconds, _ = timed(lambda: fit(model, Regression(), train, val, tp, seed=seed,
                                           device=torch.device("cpu"), checkpoint_dir=Path(tmp),
                                           identity=identity, resume="fresh", name="bench"))
        ours.append((n / seconds, evaluate_loss(model, Regression(), val, 256, None, torch.device("cpu"))))
        torch.manual_seed(seed)
        model = build_network("lstm", *network)
        seconds, _ = timed(lambda: reference_loop(model, train, val, epochs, tp.lr, tp.weight_decay,
                                                  tp.batch_size, seed))
        reference.append((n / seconds, evaluate_loss(model, Regression(), val, 256, None, torch.device("cpu"))))
    ours_sps, ref_sps = median([s for s, _ in ours]), median([s for s, _ in reference])
    step_flops = lstm_train_flops(network[1], tp.batch_size, train["x"].shape[1])
    achieved = step_flops / tp.batch_size * ours_sps
    peak = matmul_flops()
    return {"epochs": epochs, "repeats": repeats, "train_samples": len(train["x"]),
            "ours_samples_per_s": ours_sps, "reference_samples_per_s": ref_sps,
            "speedup": ours_sps / ref_sps,
            "ours_final_val_loss": median([v for _, v in ours]),
            "reference_final_val_loss": median([v for _, v in reference]),
            "train_step_gflops": achieved / 1e9, "matmul_gflops": peak / 1e9,
            "fraction_of_matmul": achieved / peak}
