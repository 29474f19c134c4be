"""FC-Siam-diff change detector (Daudt et al. 2018): one shared encoder for both dates, skip
connections carrying |features(t1) - features(t2)|, a decoder to one change logit per pixel."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True))


class SiameseChangeNet(nn.Module):
    """(batch, 2, C, H, W) or (batch, 2*C, H, W) -> (batch, H, W) change logits; any H, W."""

    def __init__(self, in_channels: int, base_channels: int, depth: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        widths = [base_channels * 2**i for i in range(depth)]
        self.encoder = nn.ModuleList(_block(c_in, c_out)
                                     for c_in, c_out in zip([in_channels, *widths], widths, strict=False))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in range(depth - 1))
        self.decoder = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in range(depth - 1))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        x = x.reshape(x.shape[0], 2, self.in_channels, *x.shape[-2:])
        height, width = x.shape[-2:]
        multiple = 2 ** (len(self.encoder) - 1)
        pad = (0, -width % multiple, 0, -height % multiple)
        both = F.pad(torch.cat([x[:, 0], x[:, 1]]), pad, mode="replicate")
        features = self.encode(both)           # shared weights: both dates in one batch
        # a tensor size, not len(): ONNX export keeps the batch axis dynamic
        batch = x.shape[0]
        diffs = [(f[:batch] - f[batch:]).abs() for f in features]
        y = diffs[-1]
        for level in reversed(range(len(self.decoder))):
            y = self.decoder[level](torch.cat([self.up[level](y), diffs[level]], dim=1))
        return self.head(y)[:, 0, :height, :width]
