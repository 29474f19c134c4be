"""ResNet-style patch classifier: 3x3 stem, stages of BasicBlocks, global average pool, linear head."""

from __future__ import annotations

import torch
from torch import nn


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
        layers: list[BasicBlock] = []
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
        for block in layers:  # zero-init the last BN of each block: blocks start as identities
            nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
