"""Strict reading of CSVs: every problem is one error naming the file (and the column and row)."""

from __future__ import annotations

import lzma
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqpipe.errors import SeqpipeError, environment_error, first_line
from seqpipe.io import require_file

if TYPE_CHECKING:
    import pandas as pd
# pandas is imported on use: a stage that only imports this module (a download) does not pay for it.

FLOAT32_MAX = float(np.finfo(np.float32).max)   # numeric cells beyond this overflow the model's float32


def read_csv_with_columns(path: Path, required: list[str], **read_csv: Any) -> pd.DataFrame:
    """`pd.read_csv(path, **read_csv)` of UTF-8 text, refusing a missing path, a folder, a FIFO, an empty,
    unparseable or wrongly compressed file (pandas decompresses by the name's ending) and missing columns."""
    import pandas as pd

    require_file(path)
    try:
        frame = pd.read_csv(path, encoding="utf-8", **read_csv)
    except pd.errors.EmptyDataError:
        raise SeqpipeError(f"{path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SeqpipeError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    except READ_ERRORS as exc:
        raise environment_error(exc, path) or SeqpipeError(f"{path}: {_unreadable(path, exc)}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SeqpipeError(f"{path}: missing column(s) {', '.join(missing)} "
                           f"(found: {', '.join(map(str, frame.columns))})")
    return frame


# The compression pandas infers from a name's ending, and what reading such a file can raise when its
# bytes are not that (gzip.BadGzipFile and bz2's are OSErrors; a zip of several files, a ValueError).
COMPRESSIONS = {".gz": "gzip", ".bz2": "bzip2", ".zip": "zip", ".xz": "xz", ".zst": "zstd", ".tar": "tar"}
READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, tarfile.TarError,
               lzma.LZMAError, ImportError)


def _unreadable(path: Path, exc: BaseException) -> str:
    """Why `path` could not be read: as the compression its name implies, or as a CSV."""
    suffix = next((s for s in reversed(Path(path).suffixes) if s.lower() in COMPRESSIONS), None)
    if suffix is None:
        return f"not a readable CSV ({type(exc).__name__}: {first_line(exc)})"
    return (f"read as {COMPRESSIONS[suffix.lower()]} because the name ends in {suffix}, and that fails "
            f"({first_line(exc)}); a plain CSV must not end in {suffix}")


def read_timeseries_csv(path: Path, timestamp_column: str, columns: list[str], min_rows: int,
                        min_rows_reason: str = "") -> pd.DataFrame:
    """Read `path`; return a frame with a parsed, strictly increasing `timestamp_column` index-free
    column and float64 `columns`. Refuses empty files, missing columns, bad timestamps, unsorted or
    duplicated times, non-numeric values, NaN/inf, values beyond float32 and fewer than `min_rows` rows
    (`min_rows_reason` says why)."""
    import pandas as pd

    frame = read_csv_with_columns(path, [timestamp_column, *columns])
    if len(frame) < min_rows:
        why = f" ({min_rows_reason})" if min_rows_reason else ""
        raise SeqpipeError(f"{path}: {len(frame)} data rows, need at least {min_rows}{why}")
    stamps = pd.to_datetime(frame[timestamp_column], errors="coerce", utc=True, format="ISO8601")
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise SeqpipeError(f"{path}: unparseable timestamp {frame[timestamp_column].iloc[row]!r} "
                           f"in column {timestamp_column!r} at data row {row + 1}")
    steps = stamps.diff().dt.total_seconds().to_numpy()[1:]
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 2
        kind = "duplicated" if steps[row - 2] == 0 else "out of order"
        raise SeqpipeError(f"{path}: timestamps must increase strictly; {kind} at data row {row}")
    out = pd.DataFrame({timestamp_column: stamps})
    for column in columns:
        out[column] = numeric_column(frame, column, path)
    return out


def numeric_column(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """`frame[column]` as float64, refusing a non-numeric cell, NaN/inf and a value beyond float32 (the
    precision the models work in) before any cast, naming `path`, the column and the first such data row."""
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise SeqpipeError(f"{path}: non-numeric value {frame[column].iloc[row]!r} in column "
                           f"{column!r} at data row {row + 1}")
    array = values.to_numpy(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        raise SeqpipeError(f"{path}: column {column!r} has {int((~finite).sum())} NaN/inf value(s), "
                           f"first at data row {int(np.flatnonzero(~finite)[0]) + 1}")
    huge = np.abs(array) > FLOAT32_MAX
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise SeqpipeError(f"{path}: value {values.iloc[row]:.6g} in column {column!r} at data row "
                           f"{row + 1} overflows float32 (|value| > {FLOAT32_MAX:.3g}), the precision "
                           f"the model works in")
    return array
