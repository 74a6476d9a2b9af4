"""Building blocks shared by the networks: conv-BN-ReLU, CBAM attention, a small U-Net."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    """Convolution (same padding), batch normalisation, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CBAM(nn.Module):
    """Convolutional block attention (Woo et al. 2018): channel then spatial attention."""

    def __init__(self, channels: int, reduction: int = 4, kernel: int = 7) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        x = x * torch.sigmoid(avg + mx)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class UNet(nn.Module):
    """A U-Net with ``len(widths) - 1`` poolings; any input size (skips are resized to match)."""

    def __init__(self, c_in: int, c_out: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.down = nn.ModuleList()
        prev = c_in
        for w in widths:
            self.down.append(nn.Sequential(conv_bn_relu(prev, w), conv_bn_relu(w, w)))
            prev = w
        self.up = nn.ModuleList()
        for w_skip, w_low in zip(widths[-2::-1], widths[:0:-1], strict=True):
            self.up.append(
                nn.Sequential(conv_bn_relu(w_low + w_skip, w_skip), conv_bn_relu(w_skip, w_skip))
            )
        self.out = nn.Conv2d(widths[0], c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, skips[-2::-1], strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.out(x)
