"""`make bench`: measure everything in one run on this machine, write benchmarks/RESULTS.md.

Every figure is a ratio against a reference measured side by side in the same run (alternating
where it matters), because these machines are noisy. Usage: python -m benchmarks.run [--work DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from seqpipe import numerics
from seqpipe.params import load_params

# Before numpy and torch load: the in-process measurements (profile, inference, convnets) run the
# kernels and thread count `seqpipe train freq_filter` runs with.
_DEFAULTS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
_THREADS = numerics.threads_per_process(_DEFAULTS.train("freq_filter").num_threads)
numerics.configure(_DEFAULTS.numerics, _THREADS)

import numpy as np  # noqa: E402

from benchmarks import convnets, inference, ndvi_tile, profile_trainer, repro  # noqa: E402
from benchmarks.common import REPO, env, machine, sh  # noqa: E402
from seqpipe import pipelines  # noqa: E402
from seqpipe.data.series import load_split  # noqa: E402
from seqpipe.io import read_json, write_json  # noqa: E402

numerics.configure_torch(_DEFAULTS.numerics, _THREADS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temp folder)")
    parser.add_argument("--reference-max-epochs", type=int, default=40,
                        help="the seed-style loop stops here if it has not reached our validation loss")
    parser.add_argument("--before", default="HEAD~1",
                        help="git revision whose full and no-op repro and CLI start-up are measured beside the "
                             "working tree's")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite RESULTS.md from benchmarks/results.json without measuring")
    args = parser.parse_args()
    if args.render_only:
        (REPO / "benchmarks/RESULTS.md").write_text(render(read_json(REPO / "benchmarks/results.json")))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="seqpipe-bench-"))
    results: dict = {"machine": machine(), "date": dt.date.today().isoformat()}
    print(f"benchmarks in {work}", flush=True)

    print(f"3-4. full dvc repro from an empty cache ({args.before}, then the working tree), then no-op repros",
          flush=True)
    results["repro"] = repro.run(work, before=args.before)
    results["repro"]["aims_met"] = {m: pipelines.get(m).stage("evaluate").quality_aim(metrics)
                                   for m, metrics in results["repro"].pop("metrics").items()}
    repo = work / "full"

    print("1. time to quality: our trainer vs the seed-style loop on freq_filter", flush=True)
    params = load_params(repo / "params.yaml")
    data_dir = repo / "data/processed/freq_filter"
    out = subprocess.run([sys.executable, "-m", "benchmarks.trainer", str(data_dir), "--max-epochs",
                          str(args.reference_max_epochs)], cwd=REPO, env=env(REPO), capture_output=True, text=True,
                         check=True).stdout
    results["trainer"] = json.loads(out.splitlines()[-1])
    spec = pipelines.get("freq_filter")
    network = spec.network(params.section("freq_filter", "model", spec.model_params), read_json(data_dir / "stats.json"))
    results["trainer"]["profile"] = profile_trainer.run(params, data_dir, network)

    print("6. bandwidth inference latency", flush=True)
    sh(["seqpipe", "export", "bandwidth"], repo)
    x_test = np.asarray(load_split(repo / "data/processed/bandwidth", "test")["x"])   # windows cut from rows
    results["inference"] = inference.run(repo / "models/bandwidth/model.pt", repo / "models/bandwidth/model.onnx",
                                         x_test)

    print("7. epoch time and peak memory of the convolutional models", flush=True)
    results["convnets"] = convnets.run(repo)

    print("5. crop_ndvi preprocess on a Sentinel-2 tile-sized stack vs a plain rasterio read", flush=True)
    results["ndvi_tile"] = ndvi_tile.run(work)

    print("8. two trainings at once, and two queued experiments on two workers", flush=True)
    sh([sys.executable, "-m", "benchmarks.concurrency"], REPO, timeout=3600)
    print(f"9. CLI start-up, {args.before} vs the working tree", flush=True)
    sh([sys.executable, "-m", "benchmarks.startup", "--before", args.before], REPO)

    write_json(REPO / "benchmarks/results.json", results)
    (REPO / "benchmarks/RESULTS.md").write_text(render(results))
    print((REPO / "benchmarks/RESULTS.md").read_text())


def render(r: dict) -> str:
    t, rep, inf, conv, tile = r["trainer"], r["repro"], r["inference"], r["convnets"], r["ndvi_tile"]
    old = rep["before"]
    noop, m, aims = rep["noop"], r["machine"], rep["aims_met"]
    sizes = sorted((k for k in tile if k.isdigit()), key=int)
    big, small = tile[sizes[-1]], tile[sizes[0]]
    missed = [k for k, ok in aims.items() if not ok]
    prof = t["profile"]
    rows = [
        ("1", "time to our trainer's validation loss, freq_filter (s)", f"{t['ours_s']:.0f} s "
         f"({t['ours_epochs']} epochs, {t['ours_scheduler']}, batch {t['ours_batch_size']})",
         f"{t['reference_s']:.0f} s ({t['reference_epochs']} epochs, seed-style loop"
         f"{'' if t['reference_reached'] else ', never reached: a lower bound'})", f"{t['speedup']:.2f}x", ">= 2x",
         t["speedup"] >= 2),
        ("1", "training throughput, freq_filter (samples/s)", f"{t['ours_samples_per_s']:.0f}",
         f"{t['reference_samples_per_s']:.0f} (DataLoader loop)",
         f"{t['ours_samples_per_s'] / t['reference_samples_per_s']:.2f}x", "-", None),
        ("3", "full `dvc repro`, empty cache, all models", f"{rep['total_s']:.0f} s", "180 s budget",
         f"{rep['total_s'] / 180:.2f}x", "<= 180 s", rep["total_s"] <= 180),
        ("3", "quality aims met (each model's quality_aim)", f"{len(aims) - len(missed)} of {len(aims)}",
         "all", "missed: " + (", ".join(missed) or "none"), "all", not missed),
        ("3", f"full `dvc repro`, the same run: working tree vs `{old['rev']}`", f"{rep['total_s']:.0f} s",
         f"{old['total_s']:.0f} s", f"{old['total_s'] / rep['total_s']:.2f}x faster", "-", None),
        ("4", "no-op `dvc repro`", f"{noop['ours_s']:.2f} s", f"{noop['floor_s']:.2f} s (1-stage project)",
         f"+{noop['above_floor_s']:.2f} s", "<= +2 s", noop["above_floor_s"] <= 2),
        ("4", f"no-op `dvc repro` vs `{old['rev']}`", f"{noop['ours_s']:.2f} s", f"{noop['before_s']:.2f} s",
         f"{noop['before_s'] / noop['ours_s']:.2f}x faster", "-", None),
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
        *[f"| {a} | {b} | {c} | {d} | {e} | {f} | {'-' if g is None else 'yes' if g else 'no'} |"
          for a, b, c, d, e, f, g in rows],
        "", "## 1-2. Where one epoch of our trainer goes (freq_filter, torch.profiler, self CPU time)", "",
        f"Batch {prof['batch_size']}; {prof['total_self_cpu_s']:.1f} s of self CPU time in all, "
        f"{sum(o['share'] for o in prof['top']):.0%} of it in the ops below. Both loops run the same network, so "
        "the same kernels per sample: ours wins time to quality by needing fewer epochs (one-cycle schedule), "
        "and per sample by what it does around the kernels (no DataLoader, no per-batch copies).", "",
        "| op | self CPU s | share | calls |", "|---|---|---|---|",
        *[f"| `{o['op']}` | {o['self_cpu_s']:.2f} | {o['share']:.1%} | {o['calls']} |" for o in prof["top"]],
        "", f"## 3. Per-stage times of the full repro (s), working tree and `{old['rev']}` in the same run", "",
        f"| stage | working tree | `{old['rev']}` |", "|---|---|---|",
        *[f"| {k} | {rep['stages_s'].get(k, 0):.1f} | {old['stages_s'].get(k, 0):.1f} |"
          for k in sorted(set(rep["stages_s"]) | set(old["stages_s"]), key=_pipeline_order)],
        *[f"| all {kind} stages | {_kind_total(rep, kind):.1f} | {_kind_total(old, kind):.1f} |"
          for kind in STAGE_KINDS],
        f"| all | {rep['total_s']:.1f} | {old['total_s']:.1f} |",
        "", f"The model's headline test metrics in the two runs (`{old['rev']}` -> working tree):", "",
        "| model | metric | before | after |", "|---|---|---|---|",
        *[f"| {m} | {k} | {_num(old['headline'].get(m, {}).get('test', {}).get(k))} | {_num(v)} |"
          for m, h in rep["headline"].items() for k, v in h["test"].items()],
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
        "", *_section(REPO / "benchmarks/results/concurrency.md"),
        "", *_section(REPO / "benchmarks/results/startup.md"),
        "", "Raw numbers: `benchmarks/results.json`.", "",
    ]
    return "\n".join(lines)


STAGE_KINDS = ("download", "preprocess", "train", "evaluate")


def _pipeline_order(stage: str) -> tuple[int, str]:
    kind, _, model = stage.partition("-")
    return (STAGE_KINDS.index(kind), model) if kind in STAGE_KINDS else (-1, stage)


def _kind_total(rep: dict, kind: str) -> float:
    return sum(v for k, v in rep["stages_s"].items() if k.startswith(kind + "-"))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _section(path: Path) -> list[str]:
    """A standalone benchmark's results file (run by main above), its title one level down."""
    lines = path.read_text().strip().splitlines()
    return ["#" + lines[0], *lines[1:]]


def _size_label(tile: dict, entry: dict) -> str:
    size = next(k for k, v in tile.items() if v is entry)
    return f"{size} x {size} px"


if __name__ == "__main__":
    main()
