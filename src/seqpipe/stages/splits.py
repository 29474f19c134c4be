"""A processed split as the stages read it: torch tensors of in-memory arrays, or `TensorWindows` that
cut each batch from the memory-mapped stored arrays of a windowed folder (seqpipe.data.windows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.data.series import load_split
from seqpipe.data.windows import Windows


class TensorWindows:
    """`Windows` for the fit loop: `v[index]` (a tensor of indices, a slice, an int) is a tensor of
    those samples on `device`; `len`, `shape`, `dtype` as a tensor's; `to(device)` moves where the
    batches go, never the data."""

    def __init__(self, windows: Windows, device: torch.device | str = "cpu") -> None:
        self.windows, self.device = windows, torch.device(device)
        self.shape = torch.Size(windows.shape)
        self.dtype = torch.from_numpy(np.empty(0, windows.dtype)).dtype

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        return torch.from_numpy(self.windows[key]).to(self.device)

    def to(self, device: torch.device | str) -> TensorWindows:
        return TensorWindows(self.windows, device)

    def subset(self, key: Any) -> TensorWindows:
        """The samples `key` selects, still cut on demand (a rank's shard)."""
        return TensorWindows(self.windows.subset(key), self.device)

    def materialise(self) -> torch.Tensor:
        """Every sample as one tensor: for a step that needs the whole split at once."""
        return self[:]


def load_split_tensors(data_dir: Path, split: str) -> dict[str, torch.Tensor | TensorWindows]:
    """One split's arrays as tensors, or TensorWindows where the folder stores windows once."""
    return {k: TensorWindows(v) if isinstance(v, Windows) else torch.from_numpy(v)
            for k, v in load_split(data_dir, split).items()}


def whole(data: dict[str, torch.Tensor | TensorWindows]) -> dict[str, torch.Tensor]:
    """`data` with every TensorWindows materialised."""
    return {k: v.materialise() if isinstance(v, TensorWindows) else v for k, v in data.items()}
