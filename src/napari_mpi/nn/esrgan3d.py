"""ESRGAN's adversarial parts in 3D (``esrgan3d``): a patch discriminator on (1, Z, Y, X)
volumes, the relativistic average GAN losses and the feature-matching loss that stands in for
ESRGAN's VGG perceptual loss.

The generator is the RRDB network of ``rrdb3d`` (:class:`~napari_mpi.nn.enhance3d.RRDB3D`).

- :class:`Discriminator3D`: a head conv and ``levels`` stride-2 stages (conv 3^3 stride 2 +
  conv 3^3, LeakyReLU 0.2, channels doubling), then a 1^3 conv to one logit per patch (a 32^3
  volume with 3 levels gives 4^3 patch logits). No batch normalisation: the batches are 4
  volumes, too few for batch statistics; a spectral norm on every conv (``spectral=True``,
  the default) bounds the discriminator's Lipschitz constant instead.
- :func:`relativistic_losses`: ESRGAN's RaGAN. With C the logits, the discriminator learns
  D_Ra(r, f) = sigmoid(C(r) - E_f[C(f)]) -> 1 and D_Ra(f, r) = sigmoid(C(f) - E_r[C(r)]) -> 0;
  the generator the opposite, so both the real and the generated volumes' logits give it a
  gradient. E is the batch mean per patch position.
- :func:`feature_matching`: no pretrained VGG can be downloaded here (and none exists for 3D
  MPI volumes). ESRGAN's perceptual loss compares deep features of a network that has learnt
  what images look like; the discriminator is such a network, trained on these very volumes,
  so the generator's output is pulled towards the target in the discriminator's intermediate
  feature spaces: the mean L1 distance between D's features of the output and of the target,
  averaged over its stages (Salimans et al. 2016's feature matching, applied per pair as
  pix2pixHD does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Discriminator3D", "feature_matching", "relativistic_losses"]


def _conv(cin: int, cout: int, stride: int, spectral: bool) -> nn.Module:
    layer = nn.Conv3d(cin, cout, 3, stride=stride, padding=1)
    return nn.utils.parametrizations.spectral_norm(layer) if spectral else layer


class Discriminator3D(nn.Module):
    """Patch discriminator on (B, 1, Z, Y, X) volumes (see the module docstring).

    Parameters
    ----------
    features : int
        Channels of the head; doubled at every stage.
    levels : int
        Stride-2 stages (each halves every side; a side of 2^levels voxels gives one patch).
    spectral : bool
        Spectral normalisation on every conv.
    """

    def __init__(self, features: int = 16, levels: int = 3, spectral: bool = True) -> None:
        super().__init__()
        if int(features) < 1 or int(levels) < 1:
            raise ValueError(f"features and levels must be >= 1, got {features}, {levels}")
        self.config = {"class": "Discriminator3D", "features": int(features),
                       "levels": int(levels), "spectral": bool(spectral)}  # fmt: skip
        self.head = _conv(1, features, 1, spectral)
        stages, width = [], int(features)
        for _ in range(int(levels)):
            wider = min(width * 2, 8 * int(features))
            stages.append(nn.ModuleList([_conv(width, wider, 2, spectral),
                                         _conv(wider, wider, 1, spectral)]))  # fmt: skip
            width = wider
        self.stages = nn.ModuleList(stages)
        self.logits = nn.Conv3d(width, 1, 1)

    def forward(self, x: torch.Tensor, features: bool = False):
        """Patch logits (B, 1, z', y', x'); with ``features`` also the list of every stage's
        activations (for :func:`feature_matching`)."""
        h = F.leaky_relu(self.head(x), 0.2)
        feats = []
        for down, conv in self.stages:
            h = F.leaky_relu(conv(F.leaky_relu(down(h), 0.2)), 0.2)
            feats.append(h)
        out = self.logits(h)
        return (out, feats) if features else out


def relativistic_losses(
    real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(discriminator_loss, generator_loss)`` of the relativistic average GAN from patch
    logits of the real and the generated volumes (same shape (B, 1, ...)). Detach what each
    player must not move before calling: the discriminator's loss with ``fake`` detached, the
    generator's with ``real`` computed without gradients to D."""
    real_rel = real - fake.mean(dim=0, keepdim=True)
    fake_rel = fake - real.mean(dim=0, keepdim=True)
    ones, zeros = torch.ones_like(real_rel), torch.zeros_like(fake_rel)
    bce = F.binary_cross_entropy_with_logits
    d_loss = 0.5 * (bce(real_rel, ones) + bce(fake_rel, zeros))
    g_loss = 0.5 * (bce(real_rel, zeros) + bce(fake_rel, ones))
    return d_loss, g_loss


def feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Mean over stages of the mean absolute difference between the discriminator's features
    of the generated volume (``fake``) and of its target (``real``, treated as constants)."""
    if len(real) != len(fake) or not real:
        raise ValueError(f"feature_matching: {len(real)} real and {len(fake)} fake stages")
    terms = [(f - r.detach()).abs().mean() for r, f in zip(real, fake, strict=True)]
    return torch.stack(terms).mean()
