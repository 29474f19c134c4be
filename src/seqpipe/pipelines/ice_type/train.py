"""ice_type's training hook: the augmentation the shared trainer applies to training batches only."""

from __future__ import annotations

from typing import Any

import torch


class PatchAugmentation:
    """Flips, rotates by multiples of 90 degrees and rescales the brightness of each (batch, bands, h, w)
    patch by f in [1 - brightness, 1 + brightness]; inputs are per-band standardised, so f acts on the
    physical values: x' = f * x + (f - 1) * mean / std. Draws from torch's global RNG, which checkpoints
    save, so a resumed run augments as an uninterrupted one."""

    def __init__(self, band_mean: list[float], band_std: list[float], brightness: float = 0.15) -> None:
        self.offset = (torch.tensor(band_mean) / torch.tensor(band_std)).float()[None, :, None, None]
        self.brightness = brightness

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        n = len(x)

        def draw(shape: tuple[int, ...]) -> torch.Tensor:  # torch's global RNG, moved to x's device
            return torch.rand(shape).to(x.device)

        # with rot90: all 8 symmetries
        x = torch.where((draw((n,)) < 0.5)[:, None, None, None], x.flip(-1), x)
        turns = (draw((n,)) * 4).long().clamp_(max=3)
        rotated = x.clone()
        for k in (1, 2, 3):
            chosen = turns == k
            if chosen.any():
                rotated[chosen] = torch.rot90(x[chosen], k, (-2, -1))
        x = rotated
        factor = 1 + (2 * draw((n,)) - 1)[:, None, None, None] * self.brightness
        x = factor * x + (factor - 1) * self.offset.to(x.device)
        return {**batch, "x": x}


def augmentation(stats: dict[str, Any]) -> PatchAugmentation:
    """The augmentation of ice_type's training batches, from the preprocessing stats (band mean and std of
    the training patches). `brightness` is a fixed default, not a params key."""
    return PatchAugmentation(stats["band_mean"], stats["band_std"])
