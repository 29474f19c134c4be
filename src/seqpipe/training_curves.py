"""The training curves, logged live by DVCLive from the training loop (rank 0): per-epoch train loss,
validation loss and learning rate in DVCLive's layout (plots/metrics/{train/loss,val/loss,lr}.tsv and
metrics.json with the last values and the step).

The train stage logs into models/<name>/live/ while it trains, so `dvc exp show` and the DVC extension
for VS Code show the epochs of a running experiment; its metrics.json is a (committed) metrics output of
the stage, its plots/ a cached output, so DVC's run-cache stays on. The evaluate stage copies the folder
to plots/<name>/train/, committed, where dvc.yaml's plots read it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from seqpipe.io import atomic_dir

SERIES = {"train/loss": "train_loss", "val/loss": "val_loss", "lr": "lr"}


class LiveCurves:
    """A DVCLive logger (`dvcyaml=False`: dvc.yaml declares the plots; no experiment of its own) that
    starts `folder` afresh; `log(record)` adds one epoch's history record and writes the files."""

    def __init__(self, folder: Path) -> None:
        from dvclive import Live  # on use: it loads DVC (about 2 s), which only the train stage needs

        logging.getLogger("dvclive").setLevel(logging.WARNING)   # its "Logging to experiment ..." line
        self.live = Live(dir=str(folder), resume=False, report=None, save_dvc_exp=False, dvcyaml=False)

    def log(self, record: dict[str, float]) -> None:
        for name, key in SERIES.items():
            self.live.log_metric(name, record[key])
        self.live.next_step()

    def end(self) -> None:
        self.live.end()


def publish(live_folder: Path, folder: Path) -> None:
    """Replace `folder` with a copy of what DVCLive wrote in `live_folder` (its metrics.json and plots/;
    not the .gitignore DVC keeps there): what the evaluate stage commits."""
    with atomic_dir(folder) as tmp:
        shutil.copy2(live_folder / "metrics.json", tmp / "metrics.json")
        shutil.copytree(live_folder / "plots", tmp / "plots")
