"""How the pipeline scales with the data: every stage of a model at 1x, 10x and 100x its default data size.

    python -m benchmarks.scale [--models bandwidth freq_filter] [--scales 1 10 100] [--epochs 1]

Each model's synthetic generator is scaled through its own params (SCALE_KEYS: rows, series, days,
patches, pairs, or the raster's sides and the pixels sampled from it), everything else at params.yaml's
defaults but `train.epochs` (one epoch by default: the time per sample of training is per epoch). Each
stage runs as its own `seqpipe` process in a temp folder holding only that params.yaml, alone, one after
the other; for each it records the wall time, the time per sample and the peak RSS of the process
(os.wait4's ru_maxrss), and after preprocess the bytes of data/raw/<model> and data/processed/<model>.
The aims (issue 28): processed data within 1.5x of raw, peak RSS of train at 100x within 1.5x of its
peak at 10x, time per sample within +-20% from 1x to 100x. Writes benchmarks/results/scale.md, scale.json
and scale.png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import REPO, env, machine

STAGES = ("download", "preprocess", "train", "evaluate")
# model -> (params keys of its section scaled with the data, how: "x" times the scale, "sqrt" the square
# root of it for each side of a raster; the product of the download keys is the sample count) and the unit
# of its samples. crop_ndvi samples at most preprocess.max_pixels pixels of its tile: that scales too.
SCALE_KEYS: dict[str, tuple[dict[str, str], str]] = {
    "bandwidth": ({"download.synthetic.n_rows": "x"}, "rows"),
    "freq_filter": ({"download.synthetic.n_series": "x"}, "series"),
    "crop_ndvi": ({"download.synthetic.width": "sqrt", "download.synthetic.height": "sqrt",
                   "preprocess.max_pixels": "x"}, "pixels"),
    "ice_type": ({"download.synthetic.n_patches": "x"}, "patches"),
    "ice_forecast": ({"download.synthetic.n_days": "x"}, "days"),
    "ice_change": ({"download.synthetic.n_pairs": "x"}, "pairs"),
}
OUT = REPO / "benchmarks" / "results"


def scaled_params(model: str, scale: int, epochs: int) -> tuple[dict[str, Any], int]:
    """params.yaml with `model`'s synthetic data `scale` times its default size, and its sample count."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    section = params["models"][model]
    keys, _ = SCALE_KEYS[model]
    samples = 1
    for dotted, how in keys.items():
        *path, key = dotted.split(".")
        parent = section
        for part in path:
            parent = parent[part]
        parent[key] = int(round(parent[key] * (scale if how == "x" else math.sqrt(scale))))
        samples *= parent[key] if path[0] == "download" else 1
    section["download"]["source"] = "synthetic"
    section["train"]["epochs"] = epochs
    return params, samples


def run_stage(stage: str, model: str, cwd: Path) -> dict[str, float]:
    """One `seqpipe STAGE MODEL` process: its wall time and peak RSS (MiB), or an error naming it."""
    start = time.perf_counter()
    proc = subprocess.Popen(["seqpipe", stage, model], cwd=cwd, env=env(REPO), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"seqpipe {stage} {model} failed ({proc.returncode}): {err[-1500:]}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024}


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(model: str, scale: int, epochs: int) -> dict[str, Any]:
    params, samples = scaled_params(model, scale, epochs)
    with tempfile.TemporaryDirectory(prefix=f"scale-{model}-{scale}x-") as tmp:
        work = Path(tmp)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        stages = {}
        for stage in STAGES:
            stages[stage] = run_stage(stage, model, work)
            stages[stage]["s_per_sample"] = stages[stage]["wall_s"] / samples
            print(f"{model} {scale}x {stage}: {stages[stage]['wall_s']:.1f} s, "
                  f"{stages[stage]['peak_rss_mib']:.0f} MiB", flush=True)
        raw = folder_bytes(work / "data/raw" / model)
        processed = folder_bytes(work / "data/processed" / model)
    return {"model": model, "scale": scale, "samples": samples, "unit": SCALE_KEYS[model][1],
            "raw_bytes": raw, "processed_bytes": processed, "stages": stages}


def render(results: list[dict[str, Any]], epochs: int) -> str:
    info = machine()
    lines = ["# Scale: every stage at several data sizes", "",
             f"Measured {time.strftime('%Y-%m-%d')} by `python -m benchmarks.scale` on {info['cpu']}, "
             f"{info['cores']} cores, {info['memory_gib']} GiB; train runs {epochs} epoch(s). Wall time "
             "includes each process's start (imports: about 2-4 s), so the time per sample at 1x is high.",
             "",
             "| model | scale | samples | raw MB | processed MB | processed/raw | "
             + " | ".join(f"{s} s (ms/sample) | {s} peak MiB" for s in STAGES) + " |",
             "|---|---|---|---|---|---|" + "---|---|" * len(STAGES)]
    for r in results:
        cells = [r["model"], f"{r['scale']}x", f"{r['samples']} {r['unit']}", f"{r['raw_bytes'] / 1e6:.1f}",
                 f"{r['processed_bytes'] / 1e6:.1f}", f"{r['processed_bytes'] / max(r['raw_bytes'], 1):.2f}"]
        for s in STAGES:
            m = r["stages"][s]
            cells += [f"{m['wall_s']:.1f} ({1000 * m['s_per_sample']:.3g})", f"{m['peak_rss_mib']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (per_sample, rss) = plt.subplots(1, 2, figsize=(11, 4))
    for model in dict.fromkeys(r["model"] for r in results):
        rows = sorted((r for r in results if r["model"] == model), key=lambda r: r["scale"])
        scales = [r["scale"] for r in rows]
        per_sample.plot(scales, [1000 * r["stages"]["train"]["s_per_sample"] for r in rows], marker="o",
                        label=model)
        rss.plot(scales, [r["stages"]["train"]["peak_rss_mib"] for r in rows], marker="o", label=model)
    for ax, title in ((per_sample, "train: ms per sample (one epoch)"), (rss, "train: peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("data size (x default)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    per_sample.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(SCALE_KEYS), choices=list(SCALE_KEYS))
    parser.add_argument("--scales", nargs="+", type=int, default=[1, 10, 100])
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    results = [measure(m, s, args.epochs) for m in args.models for s in args.scales]
    OUT.mkdir(exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (OUT / "scale.md").write_text(render(results, args.epochs), encoding="utf-8")
    plot(results, OUT / "scale.png")
    print((OUT / "scale.md").read_text())


if __name__ == "__main__":
    main()
