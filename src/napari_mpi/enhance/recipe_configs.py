"""Configs of the 3D enhancement trainings (:mod:`napari_mpi.enhance.recipes`): every
hyperparameter with its default and help, from which a CLI and the Training widget can be
generated. Light: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..nn.training import LR_SCHEDULES, TrainConfig

__all__ = [
    "CONFIGS",
    "LOSSES",
    "SCALES",
    "CSDNetConfig",
    "EDSR3DConfig",
    "ESRGAN3DConfig",
    "RCAN3DConfig",
    "RRDB3DConfig",
    "UNet3DConfig",
    "VolumeConfig",
]

LOSSES = ("smoothl1", "l1")
#: intensity scalings of the pairs before the network sees them
SCALES = ("input-max", "input-max-gain", "none")
SCALE_EPS = 1e-12


def _meta(help_text: str, **extra) -> dict:
    return {"help": help_text, **extra}


@dataclass
class VolumeConfig(TrainConfig):
    """Options shared by the 3D enhancement trainings (see :class:`TrainConfig` for the rest).

    Attributes
    ----------
    loss : {"smoothl1", "l1"}
        Pixel loss between output and target.
    smooth_beta : float
        SmoothL1's transition point (PyTorch's default 1.0, the paper's loss as written).
    steps_per_epoch : int
        Optimisation steps per epoch; 0: one pass over the training volumes.
    augment : bool
        Random x / y flips and x-y transposes of each training pair.
    lr_schedule : {"cosine", "constant"}
        Learning-rate schedule over the whole run.
    scale : {"input-max-gain", "input-max", "none"}
        "input-max": each pair divided by its degraded volume's maximum (known at inference;
        the output is multiplied back), the convention of ``napari_mpi.enhance.data``;
        "input-max-gain" (default): the same, and the targets further divided by the median
        over the training pairs of max(target) / max(degraded) (about 75 for the papers' scan
        on VesselMNIST3D, recorded in the card as ``target_gain``; the output is multiplied by
        it), so the network's targets are O(1) instead of O(75): on 400 VesselMNIST3D pairs,
        150 steps of ``edsr3d`` gained 2.0 dB over the input this way and 0.06 dB without;
        "none": intensities as given.
    degradation : str
        The scan the pairs are degraded with (:meth:`Degradation.parse`): "papers" (default),
        "legacy", ``key=value`` pairs or a JSON file.
    train_volumes, val_volumes : int
        Pairs made from the training / validation split (0: the whole split of the file, or
        the procedural default count).

    The defaults are the budget of the shipped models: 3 epochs of 200 steps of 4 volumes
    (2,400 volumes seen, about 1.8 passes over VesselMNIST3D's 1,335 training volumes), the
    same for every network, each well under an hour on 2 CPU cores.
    """

    epochs: int = field(default=3, metadata=_meta("training epochs", min=1))
    batch: int = field(default=4, metadata=_meta("volumes per optimisation step", min=1))
    loss: str = field(default="smoothl1", metadata=_meta("pixel loss", choices=LOSSES))
    smooth_beta: float = field(
        default=1.0, metadata=_meta("SmoothL1 beta (PyTorch's default)", min=1e-6)
    )
    steps_per_epoch: int = field(
        default=200, metadata=_meta("steps per epoch (0: one pass over the volumes)", min=0)
    )
    augment: bool = field(default=True, metadata=_meta("random x/y flips and x-y transposes"))
    lr_schedule: str = field(
        default="cosine", metadata=_meta("learning-rate schedule", choices=LR_SCHEDULES)
    )
    scale: str = field(
        default="input-max-gain",
        metadata=_meta("pair scaling: / max(degraded) per volume (-gain: targets also / the "
                       "median max(target)/max(degraded)), or none", choices=SCALES),
    )  # fmt: skip
    degradation: str = field(
        default="papers",
        metadata=_meta("scan of the pairs: papers, legacy, key=value,... or a JSON file "
                       "(e.g. z_step=3e-3,snr_db=20)"),
    )  # fmt: skip
    train_volumes: int = field(
        default=0, metadata=_meta("training pairs (0: the whole training split)", min=0)
    )
    val_volumes: int = field(
        default=0, metadata=_meta("validation pairs (0: the whole validation split)", min=0)
    )

    def check(self) -> None:
        """ValueError naming the first field out of range."""
        super().check()
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not self.smooth_beta > 0:
            raise ValueError(f"smooth_beta must be > 0, got {self.smooth_beta!r}")
        for name in ("train_volumes", "val_volumes"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        from .degradation import Degradation

        Degradation.parse(self.degradation)
        if int(self.steps_per_epoch) < 0:
            raise ValueError(f"steps_per_epoch must be >= 0, got {self.steps_per_epoch!r}")

    def network_kwargs(self) -> dict:
        """The network's constructor arguments (subclasses)."""
        return {}


@dataclass
class UNet3DConfig(VolumeConfig):
    """``unet3d``: widths of the 3D U-Net."""

    widths: tuple[int, ...] = field(
        default=(12, 24, 48),
        metadata=_meta("channels per U-Net level, finest first", nargs="+", metavar="C"),
    )

    def network_kwargs(self) -> dict:
        return {"widths": tuple(int(w) for w in self.widths)}


@dataclass
class EDSR3DConfig(VolumeConfig):
    """``edsr3d``: width, depth and residual scaling of the 3D EDSR."""

    features: int = field(default=32, metadata=_meta("channels inside the network", min=1))
    blocks: int = field(default=4, metadata=_meta("residual blocks", min=1))
    res_scale: float = field(default=0.1, metadata=_meta("scale of each block's residual"))
    shuffle: int = field(default=2, metadata=_meta("space-to-depth factor of the body", min=1))

    def network_kwargs(self) -> dict:
        return {"features": self.features, "blocks": self.blocks,
                "res_scale": self.res_scale, "shuffle": self.shuffle}  # fmt: skip


@dataclass
class RCAN3DConfig(VolumeConfig):
    """``rcan3d``: width, groups, blocks and attention reduction of the 3D RCAN."""

    features: int = field(default=24, metadata=_meta("channels inside the network", min=1))
    groups: int = field(default=2, metadata=_meta("residual groups", min=1))
    blocks: int = field(default=3, metadata=_meta("attention blocks per group", min=1))
    reduction: int = field(default=4, metadata=_meta("channel-attention reduction", min=1))
    shuffle: int = field(default=2, metadata=_meta("space-to-depth factor of the body", min=1))

    def network_kwargs(self) -> dict:
        return {"features": self.features, "groups": self.groups, "blocks": self.blocks,
                "reduction": self.reduction, "shuffle": self.shuffle}  # fmt: skip


@dataclass
class RRDB3DConfig(VolumeConfig):
    """``rrdb3d``: width, growth and depth of the 3D RRDB network (ESRGAN without its GAN)."""

    features: int = field(default=24, metadata=_meta("channels between dense blocks", min=1))
    growth: int = field(default=8, metadata=_meta("channels added per dense conv", min=1))
    blocks: int = field(default=1, metadata=_meta("residual-in-residual dense blocks", min=1))
    layers: int = field(default=4, metadata=_meta("growing convs per dense block", min=1))
    shuffle: int = field(default=2, metadata=_meta("space-to-depth factor of the body", min=1))

    def network_kwargs(self) -> dict:
        return {"features": self.features, "growth": self.growth, "blocks": self.blocks,
                "layers": self.layers, "shuffle": self.shuffle}  # fmt: skip


@dataclass
class ESRGAN3DConfig(RRDB3DConfig):
    """``esrgan3d``: the RRDB generator of ``rrdb3d`` trained adversarially (ESRGAN).

    ESRGAN trains its generator with a pixel loss first and then fine-tunes it with the GAN;
    ``init_from`` "default" starts from the shipped ``rrdb3d`` model (the first phase, already
    trained with the baselines' budget), so this run is the second phase: ``epochs`` x
    ``steps_per_epoch`` steps of

        L_G = pixel_weight L1(G(x), y) + adv_weight L_RaGAN(G) + feature_weight L_FM

    with the discriminator (:class:`~napari_mpi.nn.esrgan3d.Discriminator3D`) updated once
    per step on L_RaGAN(D). ESRGAN's weights are L1 1e-2, adversarial 5e-3 and VGG 1 on
    [0, 1] images; here the pixel loss keeps weight 1 (the table is scored in PSNR / SSIM),
    the adversarial 5e-3 (ESRGAN's ratio to its perceptual term) and the feature-matching
    loss that replaces VGG (no pretrained network can be downloaded; see
    :mod:`napari_mpi.nn.esrgan3d`) 1e-2. ESRGAN fine-tunes at lr 1e-4 (here both players).
    These are ESRGAN's choices carried over, not tuned on this data.
    The checkpoint kept is the epoch with the lowest validation L1 (``val_loss``).
    """

    loss: str = field(default="l1", metadata=_meta("pixel loss (ESRGAN: L1)", choices=LOSSES))
    lr: float = field(
        default=1e-4,
        metadata=_meta("generator's Adam learning rate (ESRGAN's GAN phase: 1e-4)",
                       label="learning rate", min=1e-6, max=1.0, step=1e-6),
    )  # fmt: skip
    init_from: str = field(
        default="default",
        metadata=_meta("generator's initial weights: 'default' (the shipped rrdb3d model), a "
                       "rrdb3d or esrgan3d model folder, or '' (random: no pixel-loss phase)"),
    )  # fmt: skip
    d_lr: float = field(
        default=1e-4,
        metadata=_meta("discriminator's Adam learning rate", min=1e-6, max=1.0, step=1e-6),
    )
    d_features: int = field(default=16, metadata=_meta("discriminator head channels", min=1))
    d_levels: int = field(default=3, metadata=_meta("discriminator stride-2 stages", min=1))
    pixel_weight: float = field(default=1.0, metadata=_meta("weight of the L1 loss", min=0))
    adv_weight: float = field(
        default=5e-3, metadata=_meta("weight of the relativistic adversarial loss", min=0)
    )
    feature_weight: float = field(
        default=1e-2,
        metadata=_meta("weight of the discriminator feature-matching loss (replaces VGG)",
                       min=0),
    )  # fmt: skip

    def check(self) -> None:
        super().check()
        if not (np.isfinite(self.d_lr) and self.d_lr > 0):
            raise ValueError(f"d_lr must be a positive number, got {self.d_lr!r}")
        for name in ("pixel_weight", "adv_weight", "feature_weight"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not (self.pixel_weight or self.adv_weight or self.feature_weight):
            raise ValueError(
                "pixel_weight, adv_weight and feature_weight are all 0: nothing to train"
            )
        for name in ("d_features", "d_levels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    def discriminator_kwargs(self) -> dict:
        """The discriminator's constructor arguments."""
        return {"features": int(self.d_features), "levels": int(self.d_levels)}


@dataclass
class CSDNetConfig(UNet3DConfig):
    """``csdnet``: teacher stage, student stage (``epochs``) and the contrastive term.

    The teacher and the student share ``widths``; see :mod:`napari_mpi.nn.contrastive` for the
    choices behind ``slice_axis``, ``temperature``, ``num_negatives`` and ``centre``.
    """

    teacher_epochs: int = field(default=2, metadata=_meta("epochs of the 2D teacher", min=1))
    teacher_batch: int = field(default=64, metadata=_meta("x-z slices per teacher step", min=1))
    alpha: float = field(default=0.1, metadata=_meta("weight of the InfoNCE loss (paper: 0.1)"))
    temperature: float = field(
        default=1.0,
        metadata=_meta("InfoNCE temperature (paper: not given; 1.0 chosen on validation "
                       "over 0.1)", min=1e-4),
    )  # fmt: skip
    slice_axis: int = field(
        default=3, metadata=_meta("volume axis fixed per slice: 3 = y (x-z slices)",
                                  choices=(2, 3, 4))
    )  # fmt: skip
    num_negatives: int = field(
        default=0, metadata=_meta("negatives per query (0: all other slices)", min=0)
    )
    centre: bool = field(default=False, metadata=_meta("subtract slice means before cosines"))

    def check(self) -> None:
        super().check()
        if self.slice_axis not in (2, 3, 4):
            raise ValueError(f"slice_axis must be 2, 3 or 4, got {self.slice_axis!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.alpha < 0 or self.teacher_epochs < 1 or self.num_negatives < 0:
            raise ValueError(
                "alpha must be >= 0, teacher_epochs >= 1 and num_negatives >= 0, got "
                f"{self.alpha!r}, {self.teacher_epochs!r}, {self.num_negatives!r}"
            )


#: the config of each method
CONFIGS: dict[str, type[VolumeConfig]] = {
    "unet3d": UNet3DConfig,
    "edsr3d": EDSR3DConfig,
    "rcan3d": RCAN3DConfig,
    "rrdb3d": RRDB3DConfig,
    "esrgan3d": ESRGAN3DConfig,
    "csdnet": CSDNetConfig,
}
