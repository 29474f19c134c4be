"""How the pipeline scales with the data: every stage of a model at 1x, 10x and 100x its default data size,
and at realistic profiles (PROFILES).

    python -m benchmarks.scale [--models bandwidth freq_filter] [--scales 1 10 100] [--epochs 1]
    python -m benchmarks.scale --scales --profiles full-grid bandwidth-1m

Each model's synthetic generator is scaled through its own params (SCALE_KEYS: rows, series, days,
patches, pairs, or the raster's sides and the pixels sampled from it), everything else at params.yaml's
defaults but `train.epochs` (one epoch by default: the time per sample of training is per epoch). Each
stage runs as its own `seqpipe` process in a temp folder holding only that params.yaml, alone, one after
the other; for each it records the wall time, the time per sample and the peak RSS of the process
(os.wait4's ru_maxrss), and after preprocess the bytes of data/raw/<model> and data/processed/<model>.
The aims (issue 28): processed data within 1.5x of raw, peak RSS of train at 100x within 1.5x of its
peak at 10x, time per sample within +-20% from 1x to 100x. Each run's results are merged into
benchmarks/results/scale.json (keyed by model and scale or profile: a rerun replaces its own rows, the rest
stay), so runs can be done piecemeal; scale.md and scale.png are rendered from all of them.
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
# realistic profiles: name -> (model, params keys of its section set to these values, the download key whose
# product with the others' is the sample count). full-grid: ten years of the whole 448 x 304 G02135 north
# grid at its native 25 km (the synthetic nsidc writer); bandwidth-1m: one million rows.
PROFILES: dict[str, tuple[str, dict[str, Any]]] = {
    "full-grid": ("ice_forecast", {"download.synthetic.row_off": 0, "download.synthetic.col_off": 0,
                                   "download.synthetic.height": 448, "download.synthetic.width": 304,
                                   "download.synthetic.n_days": 3650, "preprocess.downsample": 1}),
    "bandwidth-1m": ("bandwidth", {"download.synthetic.n_rows": 1_000_000}),
}
OUT = REPO / "benchmarks" / "results"


def _base(model: str, epochs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    section = params["models"][model]
    section["download"]["source"] = "synthetic"
    section["train"]["epochs"] = epochs
    return params, section


def _parent(section: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    *path, key = dotted.split(".")
    for part in path:
        section = section[part]
    return section, key


def scaled_params(model: str, scale: int, epochs: int) -> tuple[dict[str, Any], int]:
    """params.yaml with `model`'s synthetic data `scale` times its default size, and its sample count."""
    params, section = _base(model, epochs)
    keys, _ = SCALE_KEYS[model]
    samples = 1
    for dotted, how in keys.items():
        parent, key = _parent(section, dotted)
        parent[key] = int(round(parent[key] * (scale if how == "x" else math.sqrt(scale))))
        samples *= parent[key] if dotted.startswith("download.") else 1
    return params, samples


def profile_params(name: str, epochs: int) -> tuple[str, dict[str, Any], int]:
    """(model, params.yaml with profile `name`'s keys set, its sample count)."""
    model, values = PROFILES[name]
    params, section = _base(model, epochs)
    for dotted, value in values.items():
        parent, key = _parent(section, dotted)
        parent[key] = value
    samples = 1
    for dotted in SCALE_KEYS[model][0]:
        parent, key = _parent(section, dotted)
        samples *= parent[key] if dotted.startswith("download.") else 1
    return model, params, samples


def rss_parts(pid: int) -> tuple[float, float]:
    """(anonymous, file-backed) resident MiB of a live process, from /proc/<pid>/status (0, 0 once gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except (OSError, ValueError):
        return 0.0, 0.0
    anon, mapped = (float(fields.get(k, "0 kB").split()[0]) / 1024 for k in ("RssAnon", "RssFile"))
    return anon, mapped


def run_stage(stage: str, model: str, cwd: Path) -> dict[str, float]:
    """One `seqpipe STAGE MODEL` process: its wall time, peak RSS (MiB, os.wait4) and the peaks of its
    anonymous and file-backed parts (sampled every 20 ms: the file-backed part is the memory-mapped data's
    pages, page cache the kernel can drop; the anonymous part is what the process holds), or an error
    naming it."""
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:   # a file, not a pipe: nothing to drain while sampling
        proc = subprocess.Popen(["seqpipe", stage, model], cwd=cwd, env=env(REPO),
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
        anon = mapped = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            a, f = rss_parts(proc.pid)
            anon, mapped = max(anon, a), max(mapped, f)
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"seqpipe {stage} {model} failed ({proc.returncode}): {err.read()[-1500:]}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "peak_anon_mib": anon,
            "peak_file_mib": mapped}


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(model: str, params: dict[str, Any], samples: int, label: str,
            stages_run: tuple[str, ...] = STAGES) -> dict[str, Any]:
    """The `stages_run` of `model` (each needs the ones before it) under `params` in a temp folder of its
    own; `label` names the run."""
    with tempfile.TemporaryDirectory(prefix=f"scale-{model}-{label}-") as tmp:
        work = Path(tmp)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        stages: dict[str, dict[str, float]] = {}
        raw = processed = 0
        for stage in STAGES[:max(STAGES.index(s) for s in stages_run) + 1]:
            stages[stage] = run_stage(stage, model, work)
            stages[stage]["s_per_sample"] = stages[stage]["wall_s"] / samples
            if stage == "preprocess":
                raw = folder_bytes(work / "data/raw" / model)
                processed = folder_bytes(work / "data/processed" / model)
            sizes = (f"; raw {raw / 1e6:.1f} MB, processed {processed / 1e6:.1f} MB"
                     if stage == "preprocess" else "")
            print(f"{model} {label} {stage}: {stages[stage]['wall_s']:.1f} s, "
                  f"{stages[stage]['peak_rss_mib']:.0f} MiB{sizes}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    return {"model": model, "samples": samples, "unit": SCALE_KEYS[model][1],
            "raw_bytes": raw, "processed_bytes": processed, "stages": stages,
            "measured": time.strftime("%Y-%m-%d %H:%M"), "commit": commit,
            "load_after": round(os.getloadavg()[0], 1)}   # other work on the machine shows here


def key(result: dict[str, Any]) -> tuple[str, str]:
    """What a result is merged by: its model and its scale ('10x') or profile name."""
    return result["model"], result.get("profile") or f"{result['scale']}x"


def merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`old` with each result of `new` in place of the one of the same key (or appended): scale rows in
    model order, then by scale; profiles after them."""
    merged = {key(r): r for r in old}
    merged.update({key(r): r for r in new})
    order = {m: i for i, m in enumerate(SCALE_KEYS)}
    return sorted(merged.values(), key=lambda r: (bool(r.get("profile")), order.get(r["model"], len(order)),
                                                   r.get("scale") or 0, r.get("profile") or ""))


def render(results: list[dict[str, Any]]) -> str:
    info = machine()
    epochs = sorted({r.get("epochs", 1) for r in results})
    lines = ["# Scale: every stage at several data sizes", "",
             f"Rendered {time.strftime('%Y-%m-%d')} by `python -m benchmarks.scale` on {info['cpu']}, "
             f"{info['cores']} cores, {info['memory_gib']} GiB (each row as measured on its own date, see "
             f"scale.json); train runs {'/'.join(map(str, epochs))} epoch(s). Wall time "
             "includes each process's start (imports: about 2-4 s), so the time per sample at 1x is high. "
             "Peak MiB: the process's peak RSS, and in brackets the peak of its anonymous part (sampled "
             "every 20 ms; rows measured before 2026-12-07 22:30 lack it): RSS also counts the pages of the "
             "memory-mapped data read so far, which are page cache the kernel can drop.",
             ""]
    header = ("| samples | raw MB | processed MB | processed/raw | "
              + " | ".join(f"{s} s (ms/sample) | {s} peak MiB" for s in STAGES) + " |")
    rule = "|---|---|---|---|" + "---|---|" * len(STAGES)

    def peak(m: dict[str, float]) -> str:
        """Peak RSS, and where sampled the peak of its anonymous part (what the process holds, without the
        memory-mapped data's pages)."""
        return f"{m['peak_rss_mib']:.0f}" + (f" ({m['peak_anon_mib']:.0f})" if "peak_anon_mib" in m else "")

    def cells(r: dict[str, Any]) -> list[str]:
        raw, processed = r["raw_bytes"], r["processed_bytes"]
        out = [f"{r['samples']:,} {r['unit']}", f"{raw / 1e6:.1f}", f"{processed / 1e6:.1f}",
               f"{processed / max(raw, 1):.2f}"]
        for s in STAGES:
            m = r["stages"].get(s)   # absent: not run (--stages)
            out += [f"{m['wall_s']:.1f} ({1000 * m['s_per_sample']:.3g})", peak(m)] if m else ["-", "-"]
        return out

    scaled = [r for r in results if not r.get("profile")]
    if scaled:
        lines += ["| model | scale " + header, "|---|---" + rule]
        lines += ["| " + " | ".join([r["model"], f"{r['scale']}x", *cells(r)]) + " |" for r in scaled]
    profiles = [r for r in results if r.get("profile")]
    if profiles:
        lines += ["", "Profiles (`--profiles`): "
                  + "; ".join(f"{name}: {PROFILES[name][0]} with "
                              + ", ".join(f"{k} {v}" for k, v in PROFILES[name][1].items())
                              for name in dict.fromkeys(r["profile"] for r in profiles) if name in PROFILES)
                  + ", everything else at params.yaml's defaults.", "",
                  "| profile | model " + header, "|---|---" + rule]
        lines += ["| " + " | ".join([r["profile"], r["model"], *cells(r)]) + " |" for r in profiles]
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (per_sample, rss) = plt.subplots(1, 2, figsize=(11, 4))
    trained = [r for r in results if not r.get("profile") and "train" in r["stages"]]
    for model in dict.fromkeys(r["model"] for r in trained):
        rows = sorted((r for r in trained if r["model"] == model), key=lambda r: r["scale"])
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
    parser.add_argument("--scales", nargs="*", type=int, default=[1, 10, 100],
                        help="data sizes (x default); give none to run only --profiles")
    parser.add_argument("--profiles", nargs="*", default=[], choices=list(PROFILES),
                        help="realistic profiles run besides the scales (each names its own model)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES,
                        help="run the stages up to the last of these (a long profile's data stages alone)")
    args = parser.parse_args()
    upto = tuple(args.stages)
    results = []
    for model in args.models:
        for scale in args.scales:
            params, samples = scaled_params(model, scale, args.epochs)
            results.append({**measure(model, params, samples, f"{scale}x", upto), "scale": scale,
                            "epochs": args.epochs, "date": time.strftime("%Y-%m-%d")})
    for name in args.profiles:
        model, params, samples = profile_params(name, args.epochs)
        results.append({**measure(model, params, samples, name, upto), "profile": name, "epochs": args.epochs,
                        "date": time.strftime("%Y-%m-%d")})
    OUT.mkdir(exist_ok=True)
    stored = OUT / "scale.json"
    results = merge(json.loads(stored.read_text(encoding="utf-8")) if stored.exists() else [], results)
    stored.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (OUT / "scale.md").write_text(render(results), encoding="utf-8")
    plot(results, OUT / "scale.png")
    print((OUT / "scale.md").read_text())

if __name__ == "__main__":
    main()
