"""Windows cut on demand from arrays stored once (issue 28).

A windowed model's processed folder holds each series or raster stack once, `<source>.npy` (time on the
first axis), and each split's window starts, `starts_<split>.npy` (int64 rows of the stored arrays);
stats.json's `windows` says how each key of a sample (x, y, mask, ...) is cut from them (a `Cut`).
Sample i of key k is `source[start_i + offset : start_i + offset + length]` (or the one row at
`start_i + offset` when `length` is None), then its `columns` on the last axis, then cast to `dtype`.

`Windows` reads the stored array memory-mapped through a zero-copy sliding-window view, so indexing a
batch reads and copies only that batch's windows (as torchgeo's samplers and IceNet's loaders index
one stored copy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.io import load_npy

STARTS = "starts"   # starts_<split>.npy: a split's window starts


class Cut(TypedDict):
    """How one key of a sample is cut from a stored array (stats.json `windows`, one entry per key)."""

    source: str                # the stored array, <source>.npy
    offset: int                # first row after the window's start
    length: int | None         # rows (a time axis); None: the one row at start + offset, no time axis
    columns: list[int] | None  # indices on the last axis; None: all
    dtype: str | None          # cast after cutting; None: the stored dtype


def cut(source: str, offset: int = 0, length: int | None = None, columns: list[int] | None = None,
        dtype: str | None = None) -> Cut:
    return Cut(source=source, offset=offset, length=length, columns=columns, dtype=dtype)


class Windows:
    """A split's samples of one key as a read-only array-like: `len`, `shape`, `dtype`, and indexing by
    an int, a slice, an int or bool array (the windows), optionally followed by indices within a window
    (`w[:, -1]`): the rows asked for come back as a new C-contiguous numpy array, nothing else is read."""

    def __init__(self, source: np.ndarray, starts: np.ndarray, how: Cut) -> None:
        self.source, self.cut = source, how
        self.starts = np.asarray(starts, dtype=np.int64) + how["offset"]
        length = how["length"]
        rows = source if length is None else np.moveaxis(
            np.lib.stride_tricks.sliding_window_view(source, length, axis=0), -1, 1)
        if len(self.starts) and (self.starts.min() < 0 or self.starts.max() >= len(rows)):
            raise SeqpipeError(f"window starts {self.starts.min()}..{self.starts.max()} (offset {how['offset']}) "
                               f"leave the stored array {how['source']!r} of {len(source)} rows (length {length})")
        self._rows = rows
        sample = rows.shape[1:]
        if how["columns"] is not None:
            sample = (*sample[:-1], len(how["columns"]))
        self.shape = (len(self.starts), *sample)
        self.dtype = np.dtype(how["dtype"] or source.dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        picked = self.starts[first]
        single = np.ndim(picked) == 0
        out = self._rows[np.atleast_1d(picked)]   # fancy indexing: a copy of these windows only
        if self.cut["columns"] is not None:
            out = out[..., self.cut["columns"]]
        out = np.ascontiguousarray(out.astype(self.dtype, copy=False))
        if single:
            out = out[0]
        return np.ascontiguousarray(out[(slice(None), *rest) if not single else rest]) if rest else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole split materialised (what np.asarray gives): for code that needs it all at once."""
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def subset(self, key: Any) -> Windows:
        """The windows `key` selects (a slice, int or bool array) as Windows again: nothing is read."""
        return Windows(self.source, self.starts[key] - self.cut["offset"], self.cut)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The split in order, `size` windows at a time."""
        for start in range(0, len(self), size):
            yield self[start:start + size]


def stored_arrays(sources: Mapping[str, np.ndarray], starts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The files of a windowed folder, for series.save_splits (whose records in stats.json's `arrays`
    the training fingerprint reads): each stored array once, each split's starts as int64."""
    clash = [name for name in sources if name.startswith(f"{STARTS}_") or name.endswith(
        tuple(f"_{split}" for split in starts))]
    if clash:
        raise ValueError(f"stored array names {clash} clash with a split's file names")
    return {**sources, **{f"{STARTS}_{split}": np.asarray(s, np.int64) for split, s in starts.items()}}


def load_windows(data_dir: Path, split: str, cuts: Mapping[str, Cut]) -> dict[str, Windows]:
    """Every key of one split as Windows over the memory-mapped stored arrays of `data_dir`."""
    starts = load_npy(data_dir / f"{STARTS}_{split}.npy")
    stored: dict[str, np.ndarray] = {}
    for how in cuts.values():
        if how["source"] not in stored:
            stored[how["source"]] = load_npy(data_dir / f"{how['source']}.npy", mmap_mode="r")
    return {key: Windows(stored[how["source"]], starts, how) for key, how in cuts.items()}
