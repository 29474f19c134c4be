"""ice_type's raw layout, whatever the source: `patches/<file>.tif` (multi-band GeoTIFFs, one patch
each) and `labels.csv` with columns `file` (relative to `patches/`) and `label` (one of CLASSES)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqpipe.data.tables import read_csv_with_columns
from seqpipe.errors import SeqpipeError

if TYPE_CHECKING:
    import pandas as pd

CLASSES = ["open_water", "thin_ice", "thick_ice"]
LABELS_FILE = "labels.csv"
PATCH_DIR = "patches"


def read_labels(path: Path, patch_dir: Path) -> pd.DataFrame:
    """labels.csv as a frame (file, label, class index `y`); every problem is one line naming the file."""
    frame = read_csv_with_columns(path, ["file", "label"], dtype=str, keep_default_na=False)
    if frame.empty:
        raise SeqpipeError(f"{path}: no data rows")
    unknown = ~frame["label"].isin(CLASSES)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise SeqpipeError(f"{path}: unknown label {frame['label'].iloc[row]!r} at data row {row + 1} "
                           f"(allowed: {', '.join(CLASSES)})")
    duplicated = frame["file"].duplicated()
    if duplicated.any():
        raise SeqpipeError(f"{path}: file {frame['file'][duplicated].iloc[0]!r} is listed more than once")
    for name in frame["file"]:
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise SeqpipeError(f"{path}: file {name!r} must be a relative path inside {patch_dir}")
        if not (patch_dir / name).is_file():
            raise SeqpipeError(f"{patch_dir / name}: not found (listed in {path})")
    return frame.assign(y=frame["label"].map(CLASSES.index).astype(np.int64))[["file", "label", "y"]]
