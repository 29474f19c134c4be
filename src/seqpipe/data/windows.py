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

import mmap
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    index: str | None          # a per-sample int array of the split, <index>_<split>.npy (also a key)
    pick: bool                 # the row's next axis is indexed by `index` (length None only)
    onehot: int                # > 0: `index` one-hot over this many classes, appended on the last axis


def cut(source: str, offset: int = 0, length: int | None = None, columns: list[int] | None = None,
        dtype: str | None = None, index: str | None = None, pick: bool = False, onehot: int = 0) -> Cut:
    if (pick or onehot) and index is None or pick and length is not None:
        raise ValueError("pick and onehot need an index; pick cuts one row (length None)")
    return Cut(source=source, offset=offset, length=length, columns=columns, dtype=dtype, index=index,
               pick=pick, onehot=onehot)


class Windows:
    """A split's samples of one key as a read-only array-like: `len`, `shape`, `dtype`, and indexing by
    an int, a slice, an int or bool array (the windows), optionally followed by indices within a window
    (`w[:, -1]`): the rows asked for come back as a new C-contiguous numpy array, nothing else is read."""

    def __init__(self, source: np.ndarray, starts: np.ndarray, how: Cut,
                 index: np.ndarray | None = None) -> None:
        self.source, self.cut = source, how
        self.starts = np.asarray(starts, dtype=np.int64) + how["offset"]
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        length = how["length"]
        rows = source if length is None else np.moveaxis(
            np.lib.stride_tricks.sliding_window_view(source, length, axis=0), -1, 1)
        if len(self.starts) and (self.starts.min() < 0 or self.starts.max() >= len(rows)):
            raise SeqpipeError(f"window starts {self.starts.min()}..{self.starts.max()} (offset "
                               f"{how['offset']}) leave the stored array {how['source']!r} of {len(source)} "
                               f"rows (length {length})")
        self._rows = rows
        sample = rows.shape[2:] if how.get("pick") else rows.shape[1:]
        if how["columns"] is not None:
            sample = (*sample[:-1], len(how["columns"]))
        if how.get("onehot"):
            sample = (*sample[:-1], sample[-1] + how["onehot"])
        self.shape = (len(self.starts), *sample)
        self.dtype = np.dtype(how["dtype"] or source.dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, key: Any) -> np.ndarray:
        if key is Ellipsis or isinstance(key, tuple) and any(k is Ellipsis for k in key):
            return self[:][key]   # `w[..., 0]`: numpy's meaning, on the split read whole
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        starts = self.starts[first]
        single = np.ndim(starts) == 0
        starts = np.atleast_1d(starts)
        index = None if self.index is None else np.atleast_1d(self.index[first])
        if self.cut.get("pick"):
            out = self._rows[starts, index]   # fancy indexing: a copy of these rows only
        else:
            out = self._rows[starts]
        if self.cut["columns"] is not None:
            out = out[..., self.cut["columns"]]
        if self.cut.get("onehot"):
            assert index is not None, "cut() refuses a one-hot cut without an index"
            hot = np.eye(self.cut["onehot"], dtype=out.dtype)[index]
            hot = hot.reshape(len(index), *[1] * (out.ndim - 2), -1)
            out = np.concatenate([out, np.broadcast_to(hot, (*out.shape[:-1], hot.shape[-1]))], axis=-1)
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
        index = None if self.index is None else self.index[key]
        return Windows(self.source, self.starts[key] - self.cut["offset"], self.cut, index)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The split in order, `size` windows at a time."""
        for start in range(0, len(self), size):
            yield self[start:start + size]


def concat(parts: Sequence[Windows]) -> Windows:
    """The windows of `parts` one after another as one Windows, nothing read: parts cut alike from the
    same stored array (e.g. a folder's train, val and test splits of one key, each memory-mapped)."""
    first = parts[0]

    def same_source(w: Windows) -> bool:
        name = getattr(first.source, "filename", None)
        return w.source is first.source or (name is not None and getattr(w.source, "filename", None) == name)

    if not all(same_source(w) and w.cut == first.cut for w in parts):
        raise ValueError(f"concat: windows of {first.cut['source']!r} cut differently or from another array")
    index = None if first.index is None else np.concatenate([w.index for w in parts])
    starts = np.concatenate([w.starts for w in parts]) - first.cut["offset"]
    return Windows(first.source, starts, first.cut, index)


def drop_pages(array: np.ndarray) -> None:
    """Drop the pages of the file under a memory-mapped `array` (np.load's mmap_mode, or a view of one)
    from this process's resident set: they stay in the kernel's page cache and are read from there on the
    next access, so a reader that calls it now and then holds at most what it read since, not the file.
    Nothing happens for an array in memory."""
    base: Any = array
    while base is not None and getattr(base, "_mmap", None) is None:
        base = getattr(base, "base", None)
    mapped = getattr(base, "_mmap", None)
    if isinstance(mapped, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def map_chunks(windows: Windows, fn: Callable[[np.ndarray], np.ndarray], size: int) -> np.ndarray:
    """`fn` of the windows `size` at a time, concatenated: for what is small per window (a forecast, the
    last step), so that memory holds one chunk of windows, never the split."""
    return np.concatenate([fn(chunk) for chunk in windows.chunks(size)])


def stored_arrays(sources: Mapping[str, np.ndarray], starts: Mapping[str, np.ndarray],
                  indices: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """The files of a windowed folder, for series.save_splits (whose records in stats.json's `arrays`
    the training fingerprint reads): each stored array once, each split's starts and each per-sample
    index array ({name: {split: array}}) as int64."""
    per_split = {STARTS: starts, **(indices or {})}
    clash = [name for name in sources if name.endswith(tuple(f"_{split}" for split in starts))]
    if clash:
        raise ValueError(f"stored array names {clash} clash with a split's file names")
    return {**sources, **{f"{name}_{split}": np.asarray(a, np.int64)
                          for name, arrays in per_split.items() for split, a in arrays.items()}}


def load_windows(data_dir: Path, split: str, cuts: Mapping[str, Cut]) -> dict[str, Windows | np.ndarray]:
    """Every key of one split as Windows over the memory-mapped stored arrays of `data_dir`, and each other
    per-sample array of the split, `<name>_<split>.npy` but the starts (the index arrays the cuts name,
    e.g. freq_filter's selector, and any other, e.g. crop_ndvi's test pixels), as itself."""
    starts = load_npy(data_dir / f"{STARTS}_{split}.npy")
    suffix = f"_{split}.npy"
    indices = {path.name[:-len(suffix)]: load_npy(path) for path in sorted(data_dir.glob(f"*{suffix}"))
               if path.name != f"{STARTS}{suffix}"}
    for how in cuts.values():
        if how.get("index") and str(how["index"]) not in indices:
            indices[str(how["index"])] = load_npy(data_dir / f"{how['index']}{suffix}")   # its error: missing
    stored: dict[str, np.ndarray] = {}
    for how in cuts.values():
        if how["source"] not in stored:
            stored[how["source"]] = load_npy(data_dir / f"{how['source']}.npy", mmap_mode="r")
    windows = {key: Windows(stored[how["source"]], starts, how, indices.get(how.get("index") or ""))
               for key, how in cuts.items()}
    return {**indices, **windows}
