"""7. Epoch time and peak memory of the convolutional models at their default sizes.

Each model trains `epochs` epochs from scratch (`seqpipe train MODEL --fresh`) in the finished repro
folder; epoch seconds come from its train.log, peak RSS from wait4. The memory reference is the same
interpreter after importing torch and the trainer, plus the training arrays' size on disk, so the
table shows what training adds on top.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import yaml

from benchmarks.common import median, peak_rss_of

MODELS = ("ice_type", "ice_forecast", "ice_change")
EPOCH_LINE = re.compile(r": epoch \d+/\d+ .* (\d+(?:\.\d+)?)s")


def run(repo: Path, epochs: int = 3) -> dict:
    _, floor_mib = peak_rss_of([sys.executable, "-c", "import torch, seqpipe.fit, seqpipe.stages.train"], repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    out: dict = {"epochs": epochs, "import_floor_rss_mib": floor_mib}
    for name in MODELS:
        train = params["models"][name]["train"]
        variant = repo / f"bench_{name}.yaml"
        changed = {**params, "models": {**params["models"], name: {**params["models"][name],
                                                                    "train": {**train, "epochs": epochs}}}}
        variant.write_text(yaml.safe_dump(changed, sort_keys=False))
        log = repo / "models" / name / "train.log"
        log.unlink(missing_ok=True)
        seconds, rss = peak_rss_of(["seqpipe", "--params", str(variant), "train", name, "--fresh"], repo)
        epoch_s = [float(m.group(1)) for m in EPOCH_LINE.finditer(log.read_text())]
        processed = repo / "data/processed" / name
        n_train = len(np.load(processed / "x_train.npy", mmap_mode="r"))
        data_mib = sum(p.stat().st_size for p in processed.glob("*_train.npy")) / 2**20
        out[name] = {"epoch_s": median(epoch_s), "train_samples": n_train, "samples_per_s": n_train / median(epoch_s),
                     "num_threads": train["num_threads"], "batch_size": train["batch_size"],
                     "process_s": seconds, "peak_rss_mib": rss, "train_arrays_mib": data_mib,
                     "added_mib": rss - floor_mib - data_mib}
        variant.unlink()
    return out
