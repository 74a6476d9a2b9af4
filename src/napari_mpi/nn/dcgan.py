"""Networks and losses of DC_GAN (Zhang et al., IJMPI 2023; ``../shared/seeds/001_...``): two
ResNet encoder-decoder generators, two PatchGAN discriminators, the patch-wise contrastive
(PatchNCE) loss on encoder features with small projection heads, and LSGAN.

The paper gives the objective (its eq. 1, L = lambda_con L_con + lambda_GAN L_GAN +
lambda_idt L_idt) and the idea (dual contrastive learning in place of cycle consistency) but
no sizes. Chosen here, after CUT (Park et al. 2020) and DCLGAN (Han et al. 2021), sized for 2
CPU cores:

- :class:`ResnetGenerator`: 7x7 stem (``width`` channels), two stride-2 3x3 downsamplings
  (x2 channels each), ``blocks`` residual blocks at 1/4 resolution, two nearest-neighbour
  upsamplings with 3x3 convolutions (no checkerboard), a 7x7 output convolution and tanh
  (images in [-1, 1]); instance normalisation, reflection padding. Any image size (padded
  by reflection to a multiple of 4 and cropped back).
- Encoder features for PatchNCE (:meth:`ResnetGenerator.encode`): the outputs of the stem,
  both downsamplings and residual blocks; ``nce_layers`` picks among them (default: stem,
  down 1, down 2, the middle and the last residual block).
- :class:`PatchDiscriminator`: the 70x70 PatchGAN (4x4 convolutions, stride 2 for the first
  ``layers``, LeakyReLU 0.2, instance norm, ``width`` channels doubling), a real/fake score per
  patch; trained with least squares (LSGAN: real -> 1, fake -> 0).
- :class:`ProjectionHeads`: one two-layer MLP (``head_width`` units) per NCE layer, applied to
  features sampled at ``patches`` random locations, L2-normalised.
- :func:`patch_nce`: InfoNCE per layer: a query patch of the output must match the key patch
  of the input at the same location against the other sampled locations of the same image
  (temperature ``tau``), averaged over layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PatchDiscriminator",
    "ProjectionHeads",
    "ResnetGenerator",
    "lsgan",
    "patch_nce",
    "sample_patches",
]


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image-to-image ResNet generator (module docstring); input and output (B, 1, H, W) in
    [-1, 1].

    Parameters
    ----------
    width : int
        Channels of the stem (x2 after each downsampling).
    blocks : int
        Residual blocks at 1/4 resolution.
    """

    def __init__(self, width: int = 16, blocks: int = 6) -> None:
        super().__init__()
        if width < 1 or blocks < 1:
            raise ValueError(f"ResnetGenerator: width and blocks must be >= 1, got {width}, "
                             f"{blocks}")  # fmt: skip
        self.config = {"width": int(width), "blocks": int(blocks)}
        w = int(width)

        def norm_act(c):
            return [nn.InstanceNorm2d(c), nn.ReLU(inplace=True)]

        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(1, w, 7), *norm_act(w))
        self.down1 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
                                   *norm_act(2 * w))  # fmt: skip
        self.down2 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),
                                   *norm_act(4 * w))  # fmt: skip
        self.res = nn.ModuleList(_ResBlock(4 * w) for _ in range(int(blocks)))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(4 * w, 2 * w, 3, padding=1),
            *norm_act(2 * w),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(2 * w, w, 3, padding=1),
            *norm_act(w),
            nn.ReflectionPad2d(3),
            nn.Conv2d(w, 1, 7),
            nn.Tanh(),
        )

    @property
    def feature_channels(self) -> list[int]:
        """Channels of each encoder feature (stem, down 1, down 2, every residual block)."""
        w = self.config["width"]
        return [w, 2 * w, 4 * w] + [4 * w] * self.config["blocks"]

    def default_nce_layers(self) -> tuple[int, ...]:
        """Stem, down 1, down 2, the middle and the last residual block."""
        b = self.config["blocks"]
        return tuple(sorted({0, 1, 2, 2 + max(1, b // 2), 2 + b}))

    @staticmethod
    def _pad4(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, (h, w)

    def encode(self, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """The encoder features ``layers`` (indices into :attr:`feature_channels`) of ``x``."""
        x, _ = self._pad4(x)
        wanted, top = set(layers), max(layers)
        feats = []
        stages = [self.stem, self.down1, self.down2, *self.res]
        for i, stage in enumerate(stages[: top + 1]):
            x = stage(x)
            if i in wanted:
                feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = self._pad4(x)
        y = self.down2(self.down1(self.stem(x)))
        for block in self.res:
            y = block(y)
        return self.up(y)[..., :h, :w]


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: (B, 1, H, W) -> (B, 1, h, w) real/fake scores (module
    docstring)."""

    def __init__(self, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        if width < 1 or layers < 1:
            raise ValueError(f"PatchDiscriminator: width and layers must be >= 1, got {width}, "
                             f"{layers}")  # fmt: skip
        self.config = {"width": int(width), "layers": int(layers)}
        mods: list[nn.Module] = [nn.Conv2d(1, width, 4, stride=2, padding=1),
                                 nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
        c = width
        for i in range(1, layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(c, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out),
                     nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
            c = out
        mods.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ProjectionHeads(nn.Module):
    """One two-layer MLP per NCE layer (channels ``channels[i]`` -> ``width``)."""

    def __init__(self, channels: list[int], width: int = 128) -> None:
        super().__init__()
        self.config = {"channels": list(channels), "width": int(width)}
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU(inplace=True), nn.Linear(width, width))
            for c in channels
        )

    def forward(self, samples: list[torch.Tensor]) -> list[torch.Tensor]:
        """(B, N, C_i) per layer -> (B, N, width), unit length."""
        return [F.normalize(m(s), dim=-1) for m, s in zip(self.mlps, samples, strict=True)]


def sample_patches(
    feats: list[torch.Tensor], patches: int, ids: list[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:  # fmt: skip
    """Features at ``patches`` random locations per layer: ((B, N, C) per layer, the flat
    location indices used). Given ``ids``, the same locations are taken (queries)."""
    out, used = [], []
    for i, f in enumerate(feats):
        h, w = f.shape[-2:]
        flat = f.flatten(2).transpose(1, 2)  # (B, HW, C)
        if ids is None:
            n = min(int(patches), h * w)
            pick = torch.randperm(h * w, generator=generator)[:n].to(f.device)
        else:
            pick = ids[i]
        out.append(flat[:, pick])
        used.append(pick)
    return out, used


def patch_nce(queries: list[torch.Tensor], keys: list[torch.Tensor], tau: float = 0.07):
    """Mean over layers of InfoNCE between query and key patches (each (B, N, D), unit length):
    for every image and location, the key at the same location is the positive, the other N-1
    sampled keys of that image the negatives. Keys are detached."""
    total = 0.0
    for q, k in zip(queries, keys, strict=True):
        logits = torch.bmm(q, k.detach().transpose(1, 2)) / tau  # (B, N, N)
        target = torch.arange(q.shape[1], device=q.device).expand(q.shape[0], -1)
        total = total + F.cross_entropy(logits.flatten(0, 1), target.flatten())
    return total / len(queries)


def lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean (D - 1)^2 for real, mean D^2 for fake."""
    return ((scores - (1.0 if real else 0.0)) ** 2).mean()
