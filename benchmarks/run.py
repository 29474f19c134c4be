"""`make bench`: measure everything in one run on this machine, write benchmarks/RESULTS.md.

Every figure is a ratio against a reference measured side by side in the same run (alternating
where it matters), because these machines are noisy. Usage: python -m benchmarks.run [--work DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import convnets, inference, ndvi_tile, profile_trainer, repro, trainer
from benchmarks.common import REPO, machine, sh
from seqpipe.io import read_json, write_json
from seqpipe.params import load_params
from seqpipe import pipelines


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
    results["repro"]["aims_met"] = {m: pipelines.get(m).stage("evaluate").quality_aim(metrics)
                                   for m, metrics in results["repro"].pop("metrics").items()}
    repo = work / "full"

    print("1-2. trainer vs reference loop on freq_filter", flush=True)
    params = load_params(repo / "params.yaml")
    data_dir = repo / "data/processed/freq_filter"
    spec = pipelines.get("freq_filter")
    network = spec.network(params.section("freq_filter", "model", spec.model_params), read_json(data_dir / "stats.json"))
    results["trainer"] = trainer.run(params, data_dir, network, args.trainer_epochs, args.repeats)
    results["trainer"]["profile"] = profile_trainer.run(params, data_dir, network)

    print("6. bandwidth inference latency", flush=True)
    sh(["seqpipe", "export", "bandwidth"], repo)
    x_test = np.load(repo / "data/processed/bandwidth/x_test.npy")
    results["inference"] = inference.run(repo / "models/bandwidth/model.pt", repo / "models/bandwidth/model.onnx",
                                         x_test)

    print("7. epoch time and peak memory of the convolutional models", flush=True)
    results["convnets"] = convnets.run(repo)

    print("5. crop_ndvi preprocess on a Sentinel-2 tile-sized stack vs a plain rasterio read", flush=True)
    results["ndvi_tile"] = ndvi_tile.run(work)

    write_json(REPO / "benchmarks/results.json", results)
    (REPO / "benchmarks/RESULTS.md").write_text(render(results))
    print((REPO / "benchmarks/RESULTS.md").read_text())


def render(r: dict) -> str:
    t, rep, inf, conv, tile = r["trainer"], r["repro"], r["inference"], r["convnets"], r["ndvi_tile"]
    noop, m, aims = rep["noop"], r["machine"], rep["aims_met"]
    sizes = sorted((k for k in tile if k.isdigit()), key=int)
    big, small = tile[sizes[-1]], tile[sizes[0]]
    missed = [k for k, ok in aims.items() if not ok]
    prof = t["profile"]
    rnn = sum(o["share"] for o in prof["top"] if "rnn" in o["op"])
    dropout = sum(o["share"] for o in prof["top"] if "bernoulli" in o["op"])
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
        ("3", "quality aims met (each model's quality_aim)", f"{len(aims) - len(missed)} of {len(aims)}",
         "all", "missed: " + (", ".join(missed) or "none"), "all", not missed),
        ("4", "no-op `dvc repro`", f"{noop['ours_s']:.2f} s", f"{noop['floor_s']:.2f} s (1-stage project)",
         f"+{noop['above_floor_s']:.2f} s", "<= +2 s", noop["above_floor_s"] <= 2),
        ("5", f"crop_ndvi preprocess, {_size_label(tile, big)} x {tile['dates']} dates (MB/s of decoded input)",
         f"{big['preprocess_mb_per_s']:.0f} MB/s", f"{big['plain_read_mb_per_s']:.0f} MB/s (plain rasterio read)",
         f"{big['fraction_of_plain']:.0%}", ">= 50%", big["fraction_of_plain"] >= 0.5),
        ("5", "crop_ndvi preprocess peak RSS, tile vs 1/16 of it",
         f"{big['preprocess_peak_rss_mib']:.0f} MiB", f"{small['preprocess_peak_rss_mib']:.0f} MiB",
         f"{big['preprocess_peak_rss_mib'] / small['preprocess_peak_rss_mib']:.2f}x", "<= 1 GiB, ~1x",
         big["preprocess_peak_rss_mib"] <= 1024 and big["preprocess_peak_rss_mib"] <= 1.25 * small["preprocess_peak_rss_mib"]),
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
        "", "## 1-2. Where one epoch of our trainer goes (freq_filter, torch.profiler, self CPU time)", "",
        f"Batch {prof['batch_size']}; {prof['total_self_cpu_s']:.1f} s of self CPU time in all. The LSTM kernels "
        f"(forward and backward) take {rnn:.0%} and the dropout masks between LSTM layers {dropout:.0%}; both loops "
        "run exactly these kernels, so a faster loop around them can win at most the remainder.", "",
        "| op | self CPU s | share | calls |", "|---|---|---|---|",
        *[f"| `{o['op']}` | {o['self_cpu_s']:.2f} | {o['share']:.1%} | {o['calls']} |" for o in prof["top"]],
        "", "## 3. Per-stage times of the full repro (s)", "", "| stage | seconds |", "|---|---|",
        *[f"| {k} | {rep['stages_s'][k]:.1f} |" for k in sorted(rep["stages_s"], key=_pipeline_order)],
        *[f"| all {kind} stages | {sum(v for k, v in rep['stages_s'].items() if k.startswith(kind + '@')):.1f} |"
          for kind in STAGE_KINDS],
        "", "## 5. crop_ndvi preprocess vs a plain windowed rasterio read of the same files", "",
        "| raster | dates | decoded input MB | on disk MB | plain read s | preprocess s | ratio | plain RSS MiB "
        "| preprocess RSS MiB |", "|---|---|---|---|---|---|---|---|---|",
        *[f"| {_size_label(tile, v)} | {tile['dates']} | {v['input_mb']:.0f} | {v['disk_mb']:.0f} | "
          f"{v['plain_read_s']:.1f} | {v['preprocess_s']:.1f} | {v['fraction_of_plain']:.0%} | "
          f"{v['plain_read_peak_rss_mib']:.0f} | {v['preprocess_peak_rss_mib']:.0f} |"
          for k, v in tile.items() if isinstance(v, dict)],
        "", "## 6. Inference detail", "",
        "| runtime | p50 ms | p99 ms | windows/s at batch %d |" % inf["batch"], "|---|---|---|---|",
        *[f"| {k} | {inf[k]['p50_ms']:.3f} | {inf[k]['p99_ms']:.3f} | {inf[k]['batched_windows_per_s']:.0f} |"
          for k in ("onnxruntime", "torch")],
        "", f"## 7. Convolutional models at default sizes ({conv['epochs']} epochs from scratch each)", "",
        f"Memory reference: the interpreter with torch and the trainer imported, "
        f"{conv['import_floor_rss_mib']:.0f} MiB.", "",
        "| model | epoch s | train samples/s | batch | threads | peak RSS MiB | train arrays MiB "
        "| RSS above imports + arrays MiB |", "|---|---|---|---|---|---|---|---|",
        *[f"| {k} | {v['epoch_s']:.1f} | {v['samples_per_s']:.0f} | {v['batch_size']} | {v['num_threads']} | "
          f"{v['peak_rss_mib']:.0f} | {v['train_arrays_mib']:.0f} | {v['added_mib']:.0f} |"
          for k, v in conv.items() if isinstance(v, dict)],
        "", "Raw numbers: `benchmarks/results.json`.", "",
    ]
    return "\n".join(lines)


STAGE_KINDS = ("download", "preprocess", "train", "evaluate")


def _pipeline_order(stage: str) -> tuple[int, str]:
    kind, model = stage.split("@")
    return STAGE_KINDS.index(kind), model


def _size_label(tile: dict, entry: dict) -> str:
    size = next(k for k, v in tile.items() if v is entry)
    return f"{size} x {size} px"


if __name__ == "__main__":
    main()
