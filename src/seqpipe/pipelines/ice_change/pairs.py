"""ice_change's raw layout, whatever the source (and a `local` folder's): one sub-folder per pair
holding the two dated G02135 files (the earlier is `before`) and `change_mask.tif`: uint8 on the same
grid, 1 where the ice edge moved across the pixel (concentration crossed 15%: melt, freeze-up or
drift), 0 where it did not, 255 (nodata) on land, coast and the pole hole (and, for real data, where
either day is missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqpipe.data import seaice
from seqpipe.errors import SeqpipeError

MASK_NAME = "change_mask.tif"
NOT_EVALUATED = 255
EDGE = 0.15   # the ice edge: concentration 15%


def change_mask(before: np.ndarray, after: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """1 where concentration crossed the 15% edge between the two maps, 0 where not, 255 outside
    `evaluated`."""
    change = (before >= EDGE) != (after >= EDGE)
    return np.where(evaluated, change, NOT_EVALUATED).astype(np.uint8)


def pair_folders(folder: Path) -> list[Path]:
    """The pair sub-folders of a raw or local folder, each checked for two dated files and a mask."""
    pairs = sorted(p for p in Path(folder).iterdir() if p.is_dir())
    if not pairs:
        raise SeqpipeError(f"{folder}: no pair folders (each holds two G02135 files and {MASK_NAME})")
    for pair in pairs:
        if not (pair / MASK_NAME).exists():
            raise SeqpipeError(f"{pair / MASK_NAME}: missing (each pair folder needs its change mask)")
        if len(seaice.list_files(pair, ignore=(MASK_NAME,))) != 2:
            raise SeqpipeError(f"{pair}: needs exactly two G02135 files (before and after)")
    return pairs
