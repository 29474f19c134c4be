"""What `numerics: portable` costs, and that it holds at full size: every model trained on its default
data, side by side in one run, under three settings:

  native     numerics: native, the libraries free to use everything this CPU has
  portable   numerics: portable (the default)
  capped     numerics: portable, with every library held to AVX2 by its own switch, as an AVX2-only CPU
             would pick (tests/stages/test_numerics.py uses the same switches on tiny configs)

Usage: python -m benchmarks.numerics [--epochs N] [--models a,b] [--repeats R]

The data stages run once (portable) and every training starts from the same processed data with
`--fresh`. Per model it reports the median seconds per epoch of each setting (from the train log),
portable / native as the cost, and whether portable and capped wrote byte-identical model.pt. Run it
on a quiet machine: nothing else training. Writes benchmarks/results/numerics.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from benchmarks.common import REPO, machine, median, sh, write_result
from seqpipe import pipelines
from seqpipe.io import sha256_file

# What an AVX2-only x86-64 CPU (an AMD EPYC Zen 2/3, an Intel Haswell) makes each library pick
# (tests/stages/test_numerics.py uses the same switches).
AVX2_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"}
SETTINGS = {"native": ("native", {}), "portable": ("portable", {}), "capped": ("portable", AVX2_CPU)}
EPOCH = re.compile(r"epoch \d+/\d+ .* (\d+\.\d+)s")


def write_params(work: Path, numerics: str, epochs: int, models: list[str]) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["numerics"] = numerics
    for model in models:
        raw["models"][model]["train"]["epochs"] = epochs
    (work / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def train(work: Path, model: str, setting: str, epochs: int, models: list[str]) -> tuple[float, str]:
    """(median seconds per epoch, sha256 of model.pt) of one fresh training under `setting`."""
    numerics, extra = SETTINGS[setting]
    write_params(work, numerics, epochs, models)
    proc = sh(["env", *(f"{k}={v}" for k, v in extra.items()), "seqpipe", "train", model, "--fresh"], work)
    seconds = [float(m.group(1)) for m in EPOCH.finditer(proc.stderr)]
    return median(seconds), sha256_file(work / "models" / model / "model.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default=",".join(pipelines.names()))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    models = args.models.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_params(work, "portable", args.epochs, models)
        for model in models:
            for stage in ("download", "preprocess"):
                sh(["seqpipe", stage, model], work)
        for model in models:
            seconds: dict[str, list[float]] = {s: [] for s in SETTINGS}
            hashes: dict[str, set[str]] = {s: set() for s in SETTINGS}
            for _ in range(args.repeats):  # strict alternation: noise hits every setting alike
                for setting in SETTINGS:
                    epoch_s, digest = train(work, model, setting, args.epochs, models)
                    seconds[setting].append(epoch_s)
                    hashes[setting].add(digest)
            med = {s: median(v) for s, v in seconds.items()}
            rows.append({"model": model, **med, "cost": med["portable"] / med["native"],
                         "identical": len(hashes["portable"] | hashes["capped"]) == 1,
                         "native_differs": hashes["native"] != hashes["portable"]})
            print(rows[-1], flush=True)
        shutil.rmtree(work / "models", ignore_errors=True)
    info = machine()
    lines = [f"# numerics: portable vs native ({dt.date.today()})", "",
             f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}; default data, {args.epochs} epochs "
             f"per training, {args.repeats} repeats in strict alternation; `python -m benchmarks.numerics`.", "",
             "| model | native s/epoch | portable s/epoch | portable / native | capped s/epoch | "
             "portable = capped (model.pt bytes) | native differs |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['native']:.2f} | {r['portable']:.2f} | {r['cost']:.2f}x | {r['capped']:.2f} | "
              f"{'yes' if r['identical'] else 'NO'} | {'yes' if r['native_differs'] else 'no'} |" for r in rows]
    total = {s: sum(r[s] for r in rows) for s in SETTINGS}
    lines += ["", f"All models: {total['portable'] / total['native']:.2f}x the native epoch time "
              f"({total['native']:.1f} s -> {total['portable']:.1f} s per epoch of each)."]
    write_result("numerics", lines)


if __name__ == "__main__":
    main()
