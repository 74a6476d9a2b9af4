"""A small residual dense network (RDN) that denoises 2D images, for PP-MPI.

Architecture (after Zhang et al.'s RDN, sized for CPUs): a 3x3 input convolution to
``channels`` feature maps, ``blocks`` residual dense blocks (each ``layers`` densely connected
3x3 convolutions of ``growth`` maps, a 1x1 local fusion and a residual connection), a 1x1
global fusion of all block outputs, and a 3x3 output convolution that predicts the noise
(residual learning: output = input - predicted noise). Fully convolutional: any image size.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualDenseBlock(nn.Module):
    """``layers`` densely connected conv+ReLU layers, 1x1 fusion, residual connection."""

    def __init__(self, channels: int, growth: int, layers: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth, 3, padding=1) for i in range(layers)
        )
        self.fuse = nn.Conv2d(channels + layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(torch.relu(conv(torch.cat(features, dim=1))))
        return x + self.fuse(torch.cat(features, dim=1))


class DenoiserRDN(nn.Module):
    """Residual dense denoiser for single-channel images (N, 1, H, W) in [0, 1]."""

    def __init__(self, channels: int = 16, growth: int = 8, layers: int = 3, blocks: int = 3):
        super().__init__()
        self.config = {"channels": channels, "growth": growth, "layers": layers, "blocks": blocks}
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.blocks = nn.ModuleList(
            ResidualDenseBlock(channels, growth, layers) for _ in range(blocks)
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(blocks * channels, channels, 1), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f0 = self.head(x)
        f, outs = f0, []
        for block in self.blocks:
            f = block(f)
            outs.append(f)
        noise = self.tail(self.fuse(torch.cat(outs, dim=1)) + f0)
        return x - noise
