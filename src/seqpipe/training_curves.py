"""The training curves DVC plots: per-epoch train loss, validation loss and learning rate, written
from the history a model file keeps (DVCLive's layout: plots/metrics/{train/loss,val/loss,lr}.tsv
and metrics.json with the last values).

The evaluate stage writes them, so the train stage's outputs are all cached by DVC and its run-cache
stays on; the curves stay committed with the metrics, for `dvc plots diff`. The files are written
here byte for byte as `dvclive.Live(dvcyaml=False, save_dvc_exp=False)` writes them, without
importing dvclive, which loads DVC and scmrepo (about 2 s) to probe the repository.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from seqpipe.io import atomic_dir

SERIES = {"train/loss": "train_loss", "val/loss": "val_loss", "lr": "lr"}


def _value(value: float) -> float | str:
    """What DVCLive logs: NaN and infinities as their strings, anything else as is."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def write(folder: Path, history: list[dict[str, float]]) -> None:
    """Replace `folder` with the curves of `history` (one record per epoch, in order)."""
    with atomic_dir(folder) as tmp:
        summary: dict = {}
        for name, key in SERIES.items():
            if not history:
                continue
            *parents, leaf = name.split("/")
            path = tmp / "plots" / "metrics" / f"{name}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = [f"step\t{leaf}"] + [f"{step}\t{_value(record[key])}" for step, record in enumerate(history)]
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write("".join(row + os.linesep for row in rows))
            section = summary
            for part in parents:
                section = section.setdefault(part, {})
            section[leaf] = _value(history[-1][key])
        if history:
            summary["step"] = len(history) - 1
        with open(tmp / "metrics.json", "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=4)
            fh.write("\n")
