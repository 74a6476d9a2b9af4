"""3D CNN baselines for volume enhancement (CSDNet's Table 1) and CSDNet's two networks.

Every network maps a volume ``(batch, 1, D, H, W)`` (D = z, the blurred stepping axis, H = y,
W = x) to one of the same shape. They learn the residual (output = input + correction) unless
``residual=False``, and are sized to train on 2 CPU cores: at their defaults each has at most a
few hundred thousand parameters (:data:`PARAMETER_CAP`) and enhances one 32^3 volume in well
under 0.5 s on 2 cores (``benchmarks/bench_enhance_speed.py``).

- :class:`UNet3D` (``unet3d``): :class:`~napari_mpi.nn.blocks.UNet` with ``dim=3``.
- :class:`EDSR3D` (``edsr3d``): EDSR (Lim et al. 2017) in 3D: residual blocks conv-ReLU-conv
  without batch normalisation, scaled residuals, a long skip over the body and a global skip.
- :class:`RCAN3D` (``rcan3d``): RCAN (Zhang et al. 2018) in 3D: residual groups of residual
  channel-attention blocks, skips at block, group and network level.
- :class:`RRDB3D` (``rrdb3d``): ESRGAN's generator body (Wang et al. 2018) in 3D without the GAN:
  residual-in-residual dense blocks (dense blocks with LeakyReLU, residual scaling 0.2).
- :class:`Teacher2D` and :class:`Student3D`: CSDNet's 2D isotropic teacher U-Net (trained on
  x-z slices) and its 3D student U-Net of the same widths (the paper: "similar to F_t, but all
  convolutional and pooling layers are replaced with their 3D counterparts").

Each network keeps its constructor arguments in ``self.config`` (written as the card's
"architecture", so :func:`~napari_mpi.nn.checkpoint.build_model` rebuilds it). They are
registered as enhancement methods by :mod:`napari_mpi.enhance.learned` and trained by
:mod:`napari_mpi.enhance.training`.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import UNet, conv

__all__ = [
    "EDSR3D",
    "NETWORKS",
    "PARAMETER_CAP",
    "RCAN3D",
    "RRDB3D",
    "FastConv3d",
    "Student3D",
    "Teacher2D",
    "UNet3D",
    "count_parameters",
    "make_network",
    "shuffle3d",
    "unshuffle3d",
    "use_fast_convs",
]

#: the most parameters a default-size network here may have (2-core training budget)
PARAMETER_CAP = 400_000


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class FastConv3d(nn.Conv3d):
    """``Conv3d`` that calls oneDNN directly for CPU float32 inference.

    PyTorch's CPU heuristic sends small 3D convolutions of a single volume (batch 1, under
    ~20k ``C * D * H`` elements) to a slow im2col kernel, 4-5x slower than oneDNN for this
    module's layer sizes. Same parameters and state-dict keys as ``Conv3d``; training (grad
    enabled) and other devices use the ordinary path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.padding_mode == "zeros"
            and isinstance(self.padding, tuple)
            and _MKLDNN
        ):
            return torch.mkldnn_convolution(
                x.contiguous(), self.weight, self.bias,
                list(self.padding), list(self.stride), list(self.dilation), self.groups,
            )  # fmt: skip
        return super().forward(x)


_MKLDNN = hasattr(torch, "mkldnn_convolution") and torch.backends.mkldnn.is_available()


def use_fast_convs(module: nn.Module) -> nn.Module:
    """Turn every ``Conv3d`` of ``module`` into a :class:`FastConv3d` (in place; returns it)."""
    for m in module.modules():
        if type(m) is nn.Conv3d:
            m.__class__ = FastConv3d
    return module


def _check_volume(x: torch.Tensor, name: str) -> None:
    if x.ndim != 5:
        raise ValueError(
            f"{name}: needs a (batch, C, D, H, W) volume tensor, got shape {tuple(x.shape)}"
        )


def unshuffle3d(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Space to depth: ``(B, C, D, H, W)`` -> ``(B, C f^3, D/f, H/f, W/f)`` (sizes divisible
    by ``f``)."""
    b, c, d, h, w = x.shape
    f = factor
    x = x.reshape(b, c, d // f, f, h // f, f, w // f, f)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, c * f**3, d // f, h // f, w // f)


def shuffle3d(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Depth to space, the inverse of :func:`unshuffle3d`."""
    b, c, d, h, w = x.shape
    f = factor
    x = x.reshape(b, c // f**3, f, f, f, d, h, w)
    return x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c // f**3, d * f, h * f, w * f)


class _Volume(nn.Module):
    """Common parts: the input check, space-to-depth by ``shuffle`` and the global residual.

    With ``shuffle`` f > 1 the body runs on an (f^3 channels, size / f) grid (edge-padded to a
    multiple of f, cropped back): the same voxels and a receptive field f times larger for
    1/f^3 of the convolutions' cost, which is what keeps EDSR / RCAN / RRDB bodies of useful
    depth under 0.5 s per 32^3 volume on 2 cores (full-resolution 3D convolutions with few
    channels are slow on CPUs). ``shuffle=1`` is the papers' full-resolution form.
    """

    name = "volume"

    def __init__(self, residual: bool, shuffle: int = 1) -> None:
        super().__init__()
        self.residual = bool(residual)
        if int(shuffle) < 1:
            raise ValueError(f"shuffle must be an integer >= 1, got {shuffle!r}")
        self.shuffle = int(shuffle)

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, D, H, W)`` -> ``(batch, 1, D, H, W)``."""
        _check_volume(x, type(self).__name__)
        f = self.shuffle
        if f == 1:
            out = self.body_forward(x)
        else:
            size = x.shape[2:]
            pad = [a for s in reversed(size) for a in (0, (-s) % f)]
            y = nn.functional.pad(x, pad, mode="replicate") if any(pad) else x
            out = shuffle3d(self.body_forward(unshuffle3d(y, f)), f)
            out = out[:, :, : size[0], : size[1], : size[2]]
        return x + out if self.residual else out


class UNet3D(_Volume):
    """3D U-Net (``unet3d``) with a global residual.

    Parameters
    ----------
    widths : tuple of int
        Channels per level, finest first (``len(widths) - 1`` poolings by 2).
    residual : bool
        Output = input + U-Net(input).
    """

    name = "unet3d"

    def __init__(self, widths: tuple[int, ...] = (12, 24, 48), residual: bool = True) -> None:
        super().__init__(residual)
        self.config = {"class": "UNet3D", "widths": list(widths), "residual": self.residual}
        self.unet = UNet(1, 1, tuple(int(w) for w in widths), dim=3)
        use_fast_convs(self)

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)


class Student3D(UNet3D):
    """CSDNet's 3D student (``csdnet``): the 3D U-Net of the teacher's widths.

    Parameters
    ----------
    widths : tuple of int
        Channels per level, finest first (the same as the teacher's).
    residual : bool
        Output = input + U-Net(input).
    """

    name = "csdnet"

    def __init__(self, widths: tuple[int, ...] = (12, 24, 48), residual: bool = True) -> None:
        super().__init__(widths, residual)
        self.config["class"] = "Student3D"


class Teacher2D(nn.Module):
    """CSDNet's 2D isotropic teacher: a 2D U-Net deblurring x-z slices ``(batch, 1, Z, X)``.

    Parameters
    ----------
    widths : tuple of int
        Channels per level, finest first.
    residual : bool
        Output = input + U-Net(input).
    """

    def __init__(self, widths: tuple[int, ...] = (12, 24, 48), residual: bool = True) -> None:
        super().__init__()
        self.residual = bool(residual)
        self.config = {"class": "Teacher2D", "widths": list(widths), "residual": self.residual}
        self.unet = UNet(1, 1, tuple(int(w) for w in widths), dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, Z, X)`` slices -> the same shape."""
        if x.ndim != 4:
            raise ValueError(f"Teacher2D: needs (batch, 1, Z, X) slices, got {tuple(x.shape)}")
        out = self.unet(x)
        return x + out if self.residual else out


class _ResBlock(nn.Module):
    """EDSR's block: conv-ReLU-conv, no normalisation, residual scaled by ``scale``."""

    def __init__(self, features: int, scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(features, features, 3, 3), nn.ReLU(inplace=True), conv(features, features, 3, 3)
        )
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.body(x)


class EDSR3D(_Volume):
    """3D EDSR (``edsr3d``): head conv, residual blocks without BN, body conv with a long
    skip, tail conv, and a global skip from the input.

    Parameters
    ----------
    features : int
        Channels inside the network.
    blocks : int
        Residual blocks.
    res_scale : float
        Scale of each block's residual (EDSR's 0.1 stabilises wide networks).
    shuffle : int
        Space-to-depth factor of the body (1: full resolution; see the module docstring).
    residual : bool
        Output = input + network(input).
    """

    name = "edsr3d"

    def __init__(
        self,
        features: int = 32,
        blocks: int = 4,
        res_scale: float = 0.1,
        shuffle: int = 2,
        residual: bool = True,
    ) -> None:
        super().__init__(residual, shuffle)
        self.config = {"class": "EDSR3D", "features": int(features), "blocks": int(blocks),
                       "res_scale": float(res_scale), "shuffle": self.shuffle,
                       "residual": self.residual}  # fmt: skip
        c = self.shuffle**3
        self.head = conv(c, features, 3, 3)
        self.body = nn.Sequential(
            *[_ResBlock(features, res_scale) for _ in range(blocks)],
            conv(features, features, 3, 3),
        )
        self.tail = conv(features, c, 3, 3)
        use_fast_convs(self)

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))


class _ChannelAttention(nn.Module):
    """RCAN's channel attention: global average pooling, squeeze-excite MLP, sigmoid gate."""

    def __init__(self, features: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, features // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool3d(1),
            nn.Conv3d(features, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden, features, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class _RCAB(nn.Module):
    """Residual channel-attention block: conv-ReLU-conv-CA plus the input."""

    def __init__(self, features: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(features, features, 3, 3),
            nn.ReLU(inplace=True),
            conv(features, features, 3, 3),
            _ChannelAttention(features, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _ResidualGroup(nn.Module):
    """RCAN's residual group: RCABs then a conv, with a short skip."""

    def __init__(self, features: int, blocks: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *[_RCAB(features, reduction) for _ in range(blocks)], conv(features, features, 3, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RCAN3D(_Volume):
    """3D RCAN (``rcan3d``): residual groups of channel-attention blocks (residual in residual).

    Parameters
    ----------
    features : int
        Channels inside the network.
    groups : int
        Residual groups.
    blocks : int
        Residual channel-attention blocks per group.
    reduction : int
        Channel reduction of the attention's bottleneck.
    shuffle : int
        Space-to-depth factor of the body (1: full resolution; see the module docstring).
    residual : bool
        Output = input + network(input).
    """

    name = "rcan3d"

    def __init__(
        self,
        features: int = 24,
        groups: int = 2,
        blocks: int = 3,
        reduction: int = 4,
        shuffle: int = 2,
        residual: bool = True,
    ) -> None:
        super().__init__(residual, shuffle)
        self.config = {"class": "RCAN3D", "features": int(features), "groups": int(groups),
                       "blocks": int(blocks), "reduction": int(reduction),
                       "shuffle": self.shuffle, "residual": self.residual}  # fmt: skip
        c = self.shuffle**3
        self.head = conv(c, features, 3, 3)
        self.body = nn.Sequential(
            *[_ResidualGroup(features, blocks, reduction) for _ in range(groups)],
            conv(features, features, 3, 3),
        )
        self.tail = conv(features, c, 3, 3)
        use_fast_convs(self)

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))


class _DenseBlock(nn.Module):
    """ESRGAN's dense block: ``layers`` convs each seeing all earlier maps (LeakyReLU 0.2),
    a last conv back to ``features`` channels, residual scaled by ``scale``."""

    def __init__(self, features: int, growth: int, layers: int, scale: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv(features + i * growth, growth, 3, 3) for i in range(layers))
        self.fuse = conv(features + layers * growth, features, 3, 3)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [x]
        for c in self.convs:
            maps.append(self.act(c(torch.cat(maps, dim=1))))
        return x + self.scale * self.fuse(torch.cat(maps, dim=1))


class _RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks and a scaled outer residual."""

    def __init__(self, features: int, growth: int, layers: int, scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(*[_DenseBlock(features, growth, layers, scale) for _ in range(3)])
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.body(x)


class RRDB3D(_Volume):
    """3D RRDB network (``rrdb3d``): ESRGAN's generator at scale 1 without the GAN (trained
    with a pixel loss only): head conv, RRDBs, body conv with a long skip, tail conv.

    Parameters
    ----------
    features : int
        Channels between dense blocks.
    growth : int
        Channels added by each conv of a dense block.
    blocks : int
        Residual-in-residual dense blocks.
    layers : int
        Growing convs per dense block (ESRGAN: 4, plus the fusing conv).
    res_scale : float
        Residual scaling of dense blocks and RRDBs (ESRGAN: 0.2).
    shuffle : int
        Space-to-depth factor of the body (1: full resolution; see the module docstring).
    residual : bool
        Output = input + network(input).
    """

    name = "rrdb3d"

    def __init__(
        self,
        features: int = 24,
        growth: int = 8,
        blocks: int = 1,
        layers: int = 4,
        res_scale: float = 0.2,
        shuffle: int = 2,
        residual: bool = True,
    ) -> None:
        super().__init__(residual, shuffle)
        self.config = {"class": "RRDB3D", "features": int(features), "growth": int(growth),
                       "blocks": int(blocks), "layers": int(layers),
                       "res_scale": float(res_scale), "shuffle": self.shuffle,
                       "residual": self.residual}  # fmt: skip
        c = self.shuffle**3
        self.head = conv(c, features, 3, 3)
        self.body = nn.Sequential(
            *[_RRDB(features, growth, layers, res_scale) for _ in range(blocks)],
            conv(features, features, 3, 3),
        )
        self.tail = conv(features, c, 3, 3)
        use_fast_convs(self)

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))


#: the 3D volume networks by method name
NETWORKS: dict[str, type[nn.Module]] = {
    "unet3d": UNet3D,
    "edsr3d": EDSR3D,
    "rcan3d": RCAN3D,
    "rrdb3d": RRDB3D,
    "esrgan3d": RRDB3D,  # the same generator, trained adversarially (napari_mpi.nn.esrgan3d)
    "csdnet": Student3D,
}


def make_network(name: str, **kwargs) -> nn.Module:
    """The network of method ``name`` (a key of :data:`NETWORKS`) with ``kwargs``."""
    if name not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {name!r}")
    return NETWORKS[name](**kwargs)
