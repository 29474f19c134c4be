"""`make bench`: measure everything in one run on this machine, write benchmarks/RESULTS.md.

Every figure is a ratio against a reference measured side by side in the same run (alternating
where it matters), because these machines are noisy. Usage: python -m benchmarks.run [--work DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import inference, repro, trainer
from benchmarks.common import REPO, machine, sh
from seqpipe.io import read_json, write_json
from seqpipe.params import load_params
from seqpipe.registry import get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temp folder)")
    parser.add_argument("--trainer-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="seqpipe-bench-"))
    results: dict = {"machine": machine(), "date": dt.date.today().isoformat()}
    print(f"benchmarks in {work}", flush=True)

    print("3-4. full dvc repro from an empty cache, then no-op repro vs DVC's floor", flush=True)
    results["repro"] = repro.run(work)
    repo = work / "full"

    print("1-2. trainer vs reference loop on freq_filter", flush=True)
    params = load_params(repo / "params.yaml")
    data_dir = repo / "data/processed/freq_filter"
    network = get("freq_filter").network(params.model("freq_filter").model, read_json(data_dir / "stats.json"))
    results["trainer"] = trainer.run(params, data_dir, network, args.trainer_epochs, args.repeats)

    print("6. bandwidth inference latency", flush=True)
    sh(["seqpipe", "export", "bandwidth"], repo)
    x_test = np.load(repo / "data/processed/bandwidth/x_test.npy")
    results["inference"] = inference.run(repo / "models/bandwidth/model.pt", repo / "models/bandwidth/model.onnx",
                                         x_test)

    write_json(REPO / "benchmarks/results.json", results)
    (REPO / "benchmarks/RESULTS.md").write_text(render(results))
    print((REPO / "benchmarks/RESULTS.md").read_text())


def render(r: dict) -> str:
    t, rep, inf = r["trainer"], r["repro"], r["inference"]
    noop = rep["noop"]
    m = r["machine"]
    rows = [
        ("1", "training throughput, freq_filter (samples/s)", f"{t['ours_samples_per_s']:.0f}",
         f"{t['reference_samples_per_s']:.0f} (DataLoader loop)", f"{t['speedup']:.2f}x", ">= 1.5x",
         t["speedup"] >= 1.5 and t["ours_final_val_loss"] <= t["reference_final_val_loss"] * 1.05),
        ("1", "final validation loss after the same epochs", f"{t['ours_final_val_loss']:.4g}",
         f"{t['reference_final_val_loss']:.4g}", f"{t['ours_final_val_loss'] / t['reference_final_val_loss']:.2f}x",
         "<= reference", t["ours_final_val_loss"] <= t["reference_final_val_loss"] * 1.05),
        ("2", "training step FLOP/s vs dense matmul", f"{t['train_step_gflops']:.1f} GFLOP/s",
         f"{t['matmul_gflops']:.1f} GFLOP/s (fp32 mm 2048)", f"{t['fraction_of_matmul']:.0%}", ">= 50%",
         t["fraction_of_matmul"] >= 0.5),
        ("3", "full `dvc repro`, empty cache, all models", f"{rep['total_s']:.0f} s", "300 s budget",
         f"{rep['total_s'] / 300:.2f}x", "<= 300 s", rep["total_s"] <= 300),
        ("4", "no-op `dvc repro`", f"{noop['ours_s']:.2f} s", f"{noop['floor_s']:.2f} s (1-stage project)",
         f"+{noop['above_floor_s']:.2f} s", "<= +2 s", noop["above_floor_s"] <= 2),
        ("6", "bandwidth single-window latency p50 (ONNX Runtime)", f"{inf['onnxruntime']['p50_ms']:.3f} ms",
         f"{inf['torch']['p50_ms']:.3f} ms (eager torch)", f"{inf['p50_ratio_torch_over_onnx']:.1f}x faster",
         "<= 0.5 ms", inf["onnxruntime"]["p50_ms"] <= 0.5),
    ]
    lines = [
        "# Benchmark results", "",
        f"Measured {r['date']} by `make bench` on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads). Each figure is measured "
        "side by side with its reference in the same run; medians over repeats.", "",
        "| # | what | ours | reference | ratio | aim | met |", "|---|---|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} | {f} | {'yes' if g else 'no'} |" for a, b, c, d, e, f, g in rows],
        "", "## Per-stage times of the full repro (s)", "", "| stage | seconds |", "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in rep["stages_s"].items()],
        "", "## Inference detail", "",
        "| runtime | p50 ms | p99 ms | windows/s at batch %d |" % inf["batch"], "|---|---|---|---|",
        *[f"| {k} | {inf[k]['p50_ms']:.3f} | {inf[k]['p99_ms']:.3f} | {inf[k]['batched_windows_per_s']:.0f} |"
          for k in ("onnxruntime", "torch")],
        "", "Raw numbers: `benchmarks/results.json`.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
