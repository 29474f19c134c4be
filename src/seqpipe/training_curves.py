"""The training curves DVC plots: per-epoch train loss, validation loss and learning rate, written
from the history a model file keeps (DVCLive's layout: plots/metrics/{train/loss,val/loss,lr}.tsv).

The evaluate stage writes them, so the train stage's outputs are all cached by DVC and its run-cache
stays on; the curves stay committed with the metrics, for `dvc plots diff`.
"""

from __future__ import annotations

from pathlib import Path

from seqpipe.io import atomic_dir

SERIES = {"train/loss": "train_loss", "val/loss": "val_loss", "lr": "lr"}


def write(folder: Path, history: list[dict[str, float]]) -> None:
    """Replace `folder` with the curves of `history` (one record per epoch, in order)."""
    from dvclive import Live

    with atomic_dir(folder) as tmp:
        live = Live(str(tmp), dvcyaml=False, save_dvc_exp=False, report=None)
        for record in history:
            for name, key in SERIES.items():
                live.log_metric(name, record[key])
            live.next_step()
        live.end()
