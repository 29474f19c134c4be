"""A processed split as the stages read it: `TensorWindows` that read each batch from the memory-mapped
files, either cut from the arrays a windowed folder stores once (seqpipe.data.windows) or taken from a
folder's per-sample arrays; nothing holds the split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.data.series import load_split
from seqpipe.data.windows import Windows, drop_pages

RELEASE_BYTES = 64 << 20   # of the file mapped between two drops of its pages (drop_pages)
FAULT_AROUND = 64 << 10    # a page fault maps up to this much of a cached file around it (Linux's default)


class TensorWindows:
    """`Windows`, or a memory-mapped per-sample array, for the fit loop: `v[index]` (a tensor of indices,
    a slice, an int) is a tensor of those samples on `device`, read then; `len`, `shape`, `dtype` as a
    tensor's; `to(device)` moves where the batches go, never the data. Every RELEASE_BYTES of the file read
    (a sample counts at least FAULT_AROUND), the file's pages leave the process's resident set (they stay in
    the page cache), so an epoch over a split larger than memory holds a bounded part of it."""

    def __init__(self, windows: Windows | np.ndarray, device: torch.device | str = "cpu") -> None:
        self.windows, self.device = windows, torch.device(device)
        self.shape = torch.Size(windows.shape)
        self.dtype = torch.from_numpy(np.empty(0, windows.dtype)).dtype
        self._read = 0

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        rows = self.windows[key]
        if isinstance(self.windows, np.ndarray):   # a memory map: copy the rows out of it
            rows = np.array(rows)
        # a sample maps at least FAULT_AROUND of the file: small scattered samples count as that much
        self._read += max(rows.nbytes, (len(rows) if rows.ndim else 1) * FAULT_AROUND)
        if self._read >= RELEASE_BYTES:
            drop_pages(self.windows.source if isinstance(self.windows, Windows) else self.windows)
            self._read = 0
        return torch.from_numpy(rows).to(self.device)

    def to(self, device: torch.device | str) -> TensorWindows:
        return TensorWindows(self.windows, device)

    def subset(self, key: Any) -> TensorWindows:
        """The samples `key` selects, still cut on demand (a rank's shard)."""
        rows = self.windows[key] if isinstance(self.windows, np.ndarray) else self.windows.subset(key)
        return TensorWindows(rows, self.device)   # a slice of a memory map is a memory map: nothing read

    def materialise(self) -> torch.Tensor:
        """Every sample as one tensor: for a step that needs the whole split at once."""
        return self[:]


def load_split_tensors(data_dir: Path, split: str) -> dict[str, TensorWindows]:
    """One split's keys as TensorWindows over the memory-mapped files (load_split(mmap=True))."""
    return {k: TensorWindows(v) for k, v in load_split(data_dir, split, mmap=True).items()}


def whole(data: dict[str, torch.Tensor | TensorWindows]) -> dict[str, torch.Tensor]:
    """`data` with every TensorWindows materialised."""
    return {k: v.materialise() if isinstance(v, TensorWindows) else v for k, v in data.items()}
