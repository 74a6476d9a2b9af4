"""The untrained network of the deep image prior (:mod:`napari_mpi.recon.dip`).

An encoder-decoder with skip connections in the spirit of Ulyanov et al.'s "skip" network,
small enough to fit one MPI frame on 2 CPU cores: ``depth`` levels of two 3x3 convolutions
(LeakyReLU), a stride-2 convolution down between levels, bilinear / trilinear up-sampling back
and concatenation with the level's skip features. No normalisation layers: the network sees
one input (a fixed noise image), so batch statistics carry no information, and the frames of a
batch are fitted with independent weights (:func:`torch.func.vmap`), which a norm over the
batch would couple.

The same module serves 2D grids (``dims=2``: images (C, y, x)) and 3D grids (``dims=3``:
volumes (C, z, y, x)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DIPNet"]


class DIPNet(nn.Module):
    """Encoder-decoder generator of the deep image prior.

    Parameters
    ----------
    dims : {2, 3}
        Spatial dimensions of the grid.
    in_channels : int
        Channels of the fixed noise input.
    width : int
        Channels of the finest level; each coarser level has the same (the "skip" network
        keeps widths flat; the grids are small).
    depth : int
        Levels (1: no down-sampling).
    """

    def __init__(self, dims: int = 2, in_channels: int = 8, width: int = 32, depth: int = 3):
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        if in_channels < 1 or width < 1 or depth < 1:
            raise ValueError(
                f"in_channels, width and depth must be >= 1, got {in_channels}, {width}, {depth}"
            )
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.dims, self.depth = dims, depth

        def pair(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                conv(cin, cout, 3, padding=1),
                nn.LeakyReLU(0.2),
                conv(cout, cout, 3, padding=1),
                nn.LeakyReLU(0.2),
            )

        self.inc = pair(in_channels, width)
        self.down = nn.ModuleList(
            nn.Sequential(conv(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
            for _ in range(depth - 1)
        )
        self.enc = nn.ModuleList(pair(width, width) for _ in range(depth - 1))
        self.dec = nn.ModuleList(pair(2 * width, width) for _ in range(depth - 1))
        self.out = conv(width, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, *grid) noise -> (B, 1, *grid) unconstrained image."""
        h = self.inc(z)
        skips = [h]
        for down, enc in zip(self.down, self.enc, strict=True):
            h = enc(down(h))
            skips.append(h)
        mode = "bilinear" if self.dims == 2 else "trilinear"
        for dec, skip in zip(self.dec, reversed(skips[:-1]), strict=True):
            h = F.interpolate(h, size=skip.shape[2:], mode=mode, align_corners=False)
            h = dec(torch.cat([h, skip], dim=1))
        return self.out(h)
