"""ResNet-style patch classifier: 3x3 stem, stages of BasicBlocks, global average pool, linear head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqpipe.params import check

# depth -> BasicBlocks per stage (He et al. 2016, table 1); the widths double at each stage.
DEPTHS: dict[int, list[int]] = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


@dataclass(frozen=True)
class ResNetParams:
    """The `model:` section of the ResNet-based models."""

    depth: int          # 10, 18 or 34 (BasicBlock layouts of ResNet-10/18/34)
    base_width: int     # channels of the first stage (64 in the original ResNet)
    dropout: float      # before the linear head

    def __post_init__(self) -> None:
        check(self.depth in DEPTHS, "depth", f"must be one of {', '.join(map(str, DEPTHS))}, got {self.depth}")
        check(self.base_width >= 4, "base_width", "must be >= 4")
        check(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetClassifier(nn.Module):
    """(batch, in_channels, H, W) -> (batch, num_classes) logits.

    A 3x3 stride-1 stem without max-pooling (small patches, as in the CIFAR variants), then one
    stage per entry of `blocks_per_stage`, widths base_width * 2**stage, stride 2 from stage two on.
    """

    def __init__(self, in_channels: int, num_classes: int, blocks_per_stage: list[int], base_width: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, base_width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(base_width), nn.ReLU())
        layers: list[nn.Module] = []
        width = base_width
        for stage, blocks in enumerate(blocks_per_stage):
            out = base_width * 2**stage
            for b in range(blocks):
                layers.append(BasicBlock(width, out, stride=2 if stage > 0 and b == 0 else 1))
                width = out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(width, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for block in self.stages:  # zero-init the last BN of each block: blocks start as identities
            nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
