"""Where one epoch of our trainer spends its time (freq_filter LSTM): torch.profiler, top ops by self CPU.

Part of `make bench` (the evidence behind items 1-2); on its own:
python -m benchmarks.profile_trainer DATA_DIR  (a data/processed/freq_filter folder of a finished repro).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from seqpipe import pipelines
from seqpipe.fit import fit
from seqpipe.io import read_json
from seqpipe.networks import build_network
from seqpipe.params import Params, load_params
from seqpipe.stages.splits import load_split_tensors
from seqpipe.tasks import Regression


def run(params: Params, data_dir: Path, network: tuple[str, dict], top: int = 12) -> dict:
    tp = dataclasses.replace(params.train("freq_filter"), epochs=1, early_stop_patience=2)
    train, val = load_split_tensors(data_dir, "train"), load_split_tensors(data_dir, "val")
    torch.manual_seed(params.seed)
    model = build_network("lstm", *network)
    identity = {"model": "freq_filter", "network_module": "lstm", "network": network[0], "network_args": network[1],
                "fingerprint": "profile", "params": {}}
    with tempfile.TemporaryDirectory() as tmp, profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(model, Regression(), train, val, tp, seed=params.seed, device=torch.device("cpu"),
            checkpoint_dir=Path(tmp), identity=identity, resume="fresh", name="profile")
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [{"op": e.key, "self_cpu_s": e.self_cpu_time_total / 1e6, "share": e.self_cpu_time_total / total,
             "calls": e.count} for e in events[:top]]
    return {"total_self_cpu_s": total / 1e6, "batch_size": tp.batch_size, "top": rows}


if __name__ == "__main__":
    data = Path(sys.argv[1])
    repo = data.parents[2]
    params = load_params(repo / "params.yaml")
    spec = pipelines.get("freq_filter")
    net = spec.network(params.section("freq_filter", "model", spec.model_params), read_json(data / "stats.json"))
    for row in run(params, data, net)["top"]:
        print(f"{row['share']:6.1%} {row['self_cpu_s']:8.2f} s {row['calls']:7d}  {row['op']}")
