"""Building blocks shared by the networks, for 2D and 3D: conv-BN-ReLU, CBAM attention, a U-Net.

Every block takes ``dim`` (2: images (batch, C, H, W); 3: volumes (batch, C, D, H, W)); the
default 2 builds exactly the layers (and state-dict keys) the shipped 2D models were trained
with. Enhancement networks use ``dim=3``, e.g. ``UNet(1, 1, (16, 32, 64), dim=3)``.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CBAM", "UNet", "conv", "conv_bn_relu", "fold_batchnorm", "norm"]


def _check_dim(dim: int) -> int:
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    return dim


def conv(c_in: int, c_out: int, kernel: int = 3, dim: int = 2, **kwargs) -> nn.Module:
    """``Conv2d`` or ``Conv3d`` with same padding (odd ``kernel``)."""
    cls = nn.Conv2d if _check_dim(dim) == 2 else nn.Conv3d
    return cls(c_in, c_out, kernel, padding=kernel // 2, **kwargs)


def norm(channels: int, dim: int = 2) -> nn.Module:
    """``BatchNorm2d`` or ``BatchNorm3d``."""
    return (nn.BatchNorm2d if _check_dim(dim) == 2 else nn.BatchNorm3d)(channels)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, dim: int = 2) -> nn.Sequential:
    """Convolution (same padding), batch normalisation, ReLU."""
    return nn.Sequential(conv(c_in, c_out, kernel, dim), norm(c_out, dim), nn.ReLU(inplace=True))


class CBAM(nn.Module):
    """Convolutional block attention (Woo et al. 2018): channel then spatial attention."""

    def __init__(self, channels: int, reduction: int = 4, kernel: int = 7, dim: int = 2) -> None:
        super().__init__()
        self.dim = _check_dim(dim)
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            conv(channels, hidden, 1, dim), nn.ReLU(inplace=True), conv(hidden, channels, 1, dim)
        )
        self.spatial = conv(2, 1, kernel, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = tuple(range(2, x.ndim))
        avg = self.mlp(x.mean(dim=axes, keepdim=True))
        mx = self.mlp(x.amax(dim=axes, keepdim=True))
        x = x * torch.sigmoid(avg + mx)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class UNet(nn.Module):
    """A U-Net with ``len(widths) - 1`` poolings, 2D or 3D; any input size (skips are resized
    to match).

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    widths : tuple of int
        Channels at each level, finest first.
    dim : {2, 3}
        2: (batch, C, H, W) images; 3: (batch, C, D, H, W) volumes.
    """

    def __init__(self, c_in: int, c_out: int, widths: tuple[int, ...], dim: int = 2) -> None:
        super().__init__()
        self.dim = _check_dim(dim)
        if not widths:
            raise ValueError("UNet: widths needs at least one level")
        self.down = nn.ModuleList()
        prev = c_in
        for w in widths:
            self.down.append(nn.Sequential(conv_bn_relu(prev, w, dim=dim),
                                           conv_bn_relu(w, w, dim=dim)))  # fmt: skip
            prev = w
        self.up = nn.ModuleList()
        for w_skip, w_low in zip(widths[-2::-1], widths[:0:-1], strict=True):
            self.up.append(
                nn.Sequential(
                    conv_bn_relu(w_low + w_skip, w_skip, dim=dim),
                    conv_bn_relu(w_skip, w_skip, dim=dim),
                )
            )
        self.out = conv(widths[0], c_out, 1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.dim + 2:
            raise ValueError(
                f"UNet(dim={self.dim}): needs (batch, C, {'D, ' if self.dim == 3 else ''}H, W) "
                f"input, got shape {tuple(x.shape)}"
            )
        pool = F.max_pool2d if self.dim == 2 else F.max_pool3d
        mode = "bilinear" if self.dim == 2 else "trilinear"
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = pool(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, skips[-2::-1], strict=True):
            x = F.interpolate(x, size=skip.shape[2:], mode=mode, align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.out(x)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every batch normalisation that directly follows a convolution inside an
    ``nn.Sequential`` into that convolution's weights and bias (inference only: the module
    must be in eval mode, its running statistics then are constants); the normalisation is
    replaced by ``nn.Identity``. Modifies ``module`` in place and returns it; the outputs are
    unchanged up to rounding (fewer passes over memory: faster inference)."""
    if module.training:
        raise ValueError("fold_batchnorm: the module must be in eval mode")
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in itertools.pairwise(names):
            c, bn = seq._modules[a], seq._modules[b]
            if not (isinstance(c, nn.Conv2d | nn.Conv3d)
                    and isinstance(bn, nn.BatchNorm2d | nn.BatchNorm3d)
                    and bn.track_running_stats and bn.running_var is not None):  # fmt: skip
                continue
            with torch.no_grad():
                scale = bn.running_var.add(bn.eps).rsqrt()
                if bn.weight is not None:
                    scale = scale * bn.weight
                shift = -bn.running_mean * scale
                if bn.bias is not None:
                    shift = shift + bn.bias
                bias = c.bias if c.bias is not None else torch.zeros_like(bn.running_mean)
                c.weight.mul_(scale.view(-1, *([1] * (c.weight.ndim - 1))))
                c.bias = nn.Parameter(bias * scale + shift)
            seq._modules[b] = nn.Identity()
    return module
