"""1. Time to quality: our trainer with its default params against a seed-style loop, on the same data
and network (freq_filter), as MLPerf Training scores it: wall time until a validation loss is reached.

Ours: `fit` with models.freq_filter.train as params.yaml has it (the schedule `make repro` trains).
The target is the best validation loss that run reaches. The reference: the loop the original
scripts used (TensorDataset + DataLoader(shuffle=True), per-batch .to(device), batch 64, Adam 1e-3,
ReduceLROnPlateau, clip 1.0, validation every epoch), run epoch by epoch until its validation loss
is at or below the target, or `--max-epochs` (then the ratio is a lower bound). Both measure the
validation loss the same way (mean per-sample MSE) and include validation in their wall time.

Runs in its own process with the numerics `seqpipe train` uses (params.yaml's mode and thread count),
so both loops run the kernels the product runs. Usage:
python -m benchmarks.trainer DATA_DIR [--max-epochs N]  (DATA_DIR: data/processed/freq_filter of a
finished repro, whose params.yaml is two levels up). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from seqpipe import numerics
from seqpipe.params import load_params

SEED_BATCH, SEED_LR = 64, 1e-3


def reference_loop(model, train: dict, val: dict, seed: int, target: float, max_epochs: int) -> list[dict]:
    """The seed scripts' loop, run until the validation loss reaches `target`; per epoch: seconds
    since the start and validation loss."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    device = torch.device("cpu")
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=SEED_LR)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=3)
    train_loader = DataLoader(TensorDataset(train["x"], train["y"]), batch_size=SEED_BATCH, shuffle=True)
    val_loader = DataLoader(TensorDataset(val["x"], val["y"]), batch_size=SEED_BATCH, shuffle=False)
    start, epochs = time.perf_counter(), []
    while len(epochs) < max_epochs and (not epochs or epochs[-1]["val_loss"] > target):
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
                total += criterion(model(batch_x.to(device)), batch_y.to(device)).item() * len(batch_x)
        val_loss = total / len(val["x"])
        scheduler.step(val_loss)
        epochs.append({"seconds": time.perf_counter() - start, "val_loss": val_loss})
    return epochs


def run(data_dir: Path, max_epochs: int) -> dict:
    """Both trainings, ours first (it sets the target); see the module docstring."""
    import tempfile

    import torch

    from seqpipe import pipelines
    from seqpipe.fit import fit
    from seqpipe.io import read_json
    from seqpipe.networks import build_network
    from seqpipe.stages.splits import load_split_tensors, whole
    from seqpipe.tasks import Regression

    params = load_params(data_dir.parents[2] / "params.yaml")
    spec = pipelines.get("freq_filter")
    class_name, args = spec.network(params.section("freq_filter", "model", spec.model_params),
                                    read_json(data_dir / "stats.json"))
    tp = params.train("freq_filter")
    train, val = load_split_tensors(data_dir, "train"), load_split_tensors(data_dir, "val")
    identity = {"model": "freq_filter", "network_module": "lstm", "network": class_name, "network_args": args,
                "fingerprint": "bench", "params": {}}
    torch.manual_seed(params.seed)
    model = build_network("lstm", class_name, args)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = fit(model, Regression(), train, val, tp, seed=params.seed, device=torch.device("cpu"),
                     checkpoint_dir=Path(tmp), identity=identity, resume="fresh", name="bench")
        ours_s = time.perf_counter() - start
    target = result.best_val_loss
    torch.manual_seed(params.seed)
    network = build_network("lstm", class_name, args)   # the seed scripts' TensorDataset holds whole tensors
    reference = reference_loop(network, whole(train), whole(val), params.seed, target, max_epochs)
    reached = reference[-1]["val_loss"] <= target
    n = len(train["x"])
    return {"target_val_loss": target, "ours_s": ours_s, "ours_epochs": len(result.history),
            "ours_batch_size": tp.batch_size, "ours_scheduler": tp.scheduler, "ours_lr": tp.lr,
            "reference_s": reference[-1]["seconds"], "reference_epochs": len(reference),
            "reference_reached": reached, "reference_best_val_loss": min(e["val_loss"] for e in reference),
            "speedup": reference[-1]["seconds"] / ours_s,
            "ours_samples_per_s": n * len(result.history) / ours_s,
            "reference_samples_per_s": n * len(reference) / reference[-1]["seconds"],
            "threads": torch.get_num_threads(), "numerics": params.numerics, "network_args": args}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--max-epochs", type=int, default=40)
    args = parser.parse_args()
    params = load_params(args.data_dir.parents[2] / "params.yaml")
    threads = numerics.threads_per_process(params.train("freq_filter").num_threads)
    numerics.configure(params.numerics, threads)   # before torch loads, as `seqpipe train` does
    import torch  # noqa: F401  (loads under the settings above)

    numerics.configure_torch(params.numerics, threads)
    json.dump(run(args.data_dir, args.max_epochs), sys.stdout)


if __name__ == "__main__":
    main()
