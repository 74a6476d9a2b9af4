"""The hyperparameters of every reconstruction method's training, with their defaults, in one place.

Each config is a dataclass of :class:`~napari_mpi.nn.training.TrainConfig`; a field's metadata
carries its ``help`` (and optionally ``choices``, ``flag``, ``label``, ``min``, ``hidden``), from
which ``napari-mpi train METHOD`` and the Training widget are generated
(:mod:`napari_mpi.nn.trainers`). This module is light (numpy only; no torch, no simulator), so
the CLI can build its options without loading either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..nn.training import LR_SCHEDULES, TrainConfig
from ..simulation.phantom_mix import DEFAULT_MIX, MIX_KINDS, check_mix, format_mix

__all__ = [
    "DERNET_KEYS",
    "DERNET_SIZE_KEYS",
    "INITIALISATIONS",
    "LOSSES",
    "MIX_HELP",
    "STRATEGIES",
    "ADMMNetConfig",
    "CascadedConfig",
    "DERnetConfig",
    "DenoiserConfig",
    "SignalConfig",
    "check_snr_range",
]

#: how a new DERnet's weights start: PyTorch's defaults, or the domain transform at ridge
#: regressions of the training pairs (one, or one per SNR band)
INITIALISATIONS = ("random", "ridge", "ridge-bands")
#: DERnet's architecture parameters besides the grid, the rows and the output scale, and
#: their types
DERNET_KEYS = {
    "c1": int, "c2": int, "c3": int, "c4": int, "c5": int, "dropout0": float, "dropout1": float,
}  # fmt: skip
#: the keys of :data:`DERNET_KEYS` that set layer sizes (the weights' shapes): the integer ones
DERNET_SIZE_KEYS = tuple(k for k, kind in DERNET_KEYS.items() if kind is int)
#: the cascaded network's training orders
STRATEGIES = ("end-to-end", "stage-wise")
#: image losses (the names of :data:`napari_mpi.nn.losses.LOSSES`; a test checks they agree)
LOSSES = ("mse", "l1", "l1+ssim")


#: the help of every training's phantom-mix option
MIX_HELP = (
    f"training phantoms: KIND=WEIGHT pairs, kinds {', '.join(MIX_KINDS)} (see "
    f"napari_mpi.simulation.phantom_mix; default {format_mix(DEFAULT_MIX)}; digit=1: digits "
    "only, the DERnet paper's data)"
)


_MIX_META = {"help": MIX_HELP, "keys": dict.fromkeys(MIX_KINDS, float), "label": "phantom mix"}


def check_snr_range(snr_range: tuple[float, float]) -> tuple[float, float]:
    """``snr_range`` as (low, high) floats in dB; ValueError unless finite with low <= high."""
    lo, hi = (float(v) for v in snr_range)
    if not (np.isfinite([lo, hi]).all() and lo <= hi):
        raise ValueError(f"snr_range must be (low, high) in dB, got {tuple(snr_range)}")
    return lo, hi


def _meta(help: str, **extra) -> dict:
    return {"help": help, **extra}


@dataclass
class SignalConfig(TrainConfig):
    """Hyperparameters of a signal-to-image network's training (DERnet and cascaded share
    them; each method's config subclasses this with its own defaults).

    Attributes
    ----------
    snr_threshold : float or None
        Rows: those with calibration SNR >= this (all when None).
    num_train, num_val : int
        Training and validation pairs.
    fresh_noise : bool
        New noise (and SNRs) on the training pairs every epoch; validation pairs keep theirs.
    fresh_phantoms : bool
        A new draw of training pairs every epoch (new placements of the same digits, new
        objects of the mix's other kinds).
    lr_schedule : {"cosine", "constant"}
        Cosine decay from ``lr`` to lr / 100 over each phase, or constant.
    snr_range : (float, float)
        Training SNRs (dB, over the model's rows), uniform in this range.
    phantom_mix : dict
        Kind -> weight of the training phantoms (:mod:`napari_mpi.simulation.phantom_mix`);
        ``{"digit": 1}`` is the DERnet paper's digits-only data.
    """

    epochs: int = field(default=15, metadata=_meta("training epochs", min=1))
    snr_threshold: float | None = field(
        default=10.0,
        metadata=_meta("rows with calibration SNR >= T", label="rows: calibration SNR >=", min=0),
    )
    num_train: int = field(
        default=8100, metadata=_meta("training pairs", label="training pairs", min=1)
    )
    num_val: int = field(
        default=900, metadata=_meta("validation pairs", label="validation pairs", min=1)
    )
    fresh_noise: bool = field(
        default=True,
        metadata=_meta("keep each training pair's noise (default: new noise every epoch)",
                       flag="--fixed-noise", hidden_widget=True),
    )  # fmt: skip
    fresh_phantoms: bool = field(
        default=False,
        metadata=_meta("a new draw of training phantoms every epoch (new placements of the "
                       "same digits, new objects of the other kinds)",
                       label="new training phantoms every epoch"),
    )  # fmt: skip
    lr_schedule: str = field(
        default="cosine",
        metadata=_meta("learning rate constant, or cosine decay to 1/100",
                       choices=LR_SCHEDULES, hidden_widget=True),
    )  # fmt: skip
    snr_range: tuple[float, float] = field(
        default=(20.0, 40.0),
        metadata=_meta("training SNRs, uniform in LOW-HIGH dB over the model's rows "
                       "(20 40, as the DERnet paper)", widget_names=("snr_low", "snr_high"),
                       labels=("training SNR from (dB)", "training SNR to (dB)")),
    )  # fmt: skip
    phantom_mix: dict = field(default_factory=lambda: dict(DEFAULT_MIX), metadata=_MIX_META)

    def check(self) -> None:
        super().check()
        self.snr_range = check_snr_range(self.snr_range)
        self.phantom_mix = check_mix(self.phantom_mix)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("num_train", "num_val"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class DERnetConfig(SignalConfig):
    """DERnet's training (:func:`napari_mpi.recon.dernet.iter_train_dernet`)."""

    init: str = field(
        default="random",
        metadata=_meta("start the domain transform at random or at the ridge linear "
                       "reconstruction", choices=INITIALISATIONS, label="DERnet start"),
    )  # fmt: skip
    init_from: str | None = field(
        default=None,
        metadata=_meta("continue training this model (its rows, architecture and weights; "
                       "--architecture may then change only the dropout rates)",
                       metavar="MODEL_DIR", label="continue model (empty: new)", folder=True),
    )  # fmt: skip
    architecture: dict | None = field(
        default=None,
        metadata=_meta(f"override the paper's hyperparameters ({', '.join(DERNET_KEYS)})",
                       keys=DERNET_KEYS),
    )  # fmt: skip


@dataclass
class ADMMNetConfig(SignalConfig):
    """ADMM-Net's training (:func:`napari_mpi.recon.admmnet.iter_train_admmnet`): DERnet's
    data and loss, the unrolled network's size."""

    epochs: int = field(default=20, metadata=_meta("training epochs", min=1))
    stages: int = field(default=10, metadata=_meta("unrolled ADMM stages", min=1))
    features: int = field(
        default=16, metadata=_meta("channels of each stage's regulariser CNN", min=1)
    )
    rho0: float = field(
        default=0.05,
        metadata=_meta("starting penalty of every stage, relative to ||A||_F^2 / N "
                       "(the admm method's default rho)", min=1e-9),
    )  # fmt: skip
    init_from: str | None = field(
        default=None,
        metadata=_meta("continue training this model (its rows, architecture and weights)",
                       metavar="MODEL_DIR", label="continue model (empty: new)", folder=True),
    )  # fmt: skip

    def check(self) -> None:
        super().check()
        if int(self.stages) < 1 or int(self.features) < 1 or not self.rho0 > 0:
            raise ValueError(
                f"stages and features must be >= 1 and rho0 > 0, got {self.stages}, "
                f"{self.features}, {self.rho0}"
            )


@dataclass
class CascadedConfig(SignalConfig):
    """The cascaded network's training (:func:`napari_mpi.recon.cascaded.iter_train_cascaded`)."""

    epochs: int = field(default=20, metadata=_meta("training epochs", min=1))
    loss: str = field(default="l1+ssim", metadata=_meta("training loss", choices=LOSSES))
    strategy: str = field(
        default="end-to-end", metadata=_meta("training order", choices=STRATEGIES)
    )
    stage1_epochs: int | None = field(
        default=None,
        metadata=_meta("stage-wise: epochs of module 1 alone (half of --epochs)",
                       hidden_widget=True),
    )  # fmt: skip
    preliminary_weight: float = field(
        default=0.5,
        metadata=_meta("end-to-end: weight of the loss on the preliminary image", min=0,
                       hidden_widget=True),
    )  # fmt: skip
    ssim_weight: float = field(
        default=0.84, metadata=_meta("L1+SSIM: weight of 1 - SSIM", hidden=True)
    )
    init_lam: float | None = field(
        default=0.01, metadata=_meta("module 1 starts at the Tikhonov inverse", hidden=True)
    )
    architecture: dict | None = field(default=None, metadata=_meta("sizes", hidden=True))
    init_from: str | None = field(
        default=None,
        metadata=_meta("continue training this model (its rows, architecture and weights)",
                       metavar="MODEL_DIR", label="continue model (empty: new)", folder=True),
    )  # fmt: skip


@dataclass
class DenoiserConfig(TrainConfig):
    """The PP-MPI denoiser's training
    (:func:`napari_mpi.recon.denoiser_training.iter_train_denoiser`).

    Attributes
    ----------
    steps : int
        Optimisation steps (each on a new batch of phantoms and noise).
    size : int
        Training image size (px).
    noise_range : (float, float)
        Standard deviation of the Gaussian noise, uniform in this range (images have max 1).
    validate_every : int
        Steps between validations (and after the last step).
    architecture : dict or None
        :class:`~napari_mpi.nn.denoiser.DenoiserRDN` parameters (None: its defaults).
    phantom_mix : dict
        Kind -> weight of the clean images (as the signal networks' training).
    """

    epochs: int = field(default=0, metadata={"hidden": True})  # steps and validate_every rule
    steps: int = field(default=4000, metadata=_meta("optimiser steps", min=1))
    batch: int = field(default=32, metadata=_meta("samples per step", min=1))
    size: int = field(
        default=24, metadata=_meta("training image size (px)", min=8, hidden_widget=True)
    )
    noise_range: tuple[float, float] = field(
        default=(0.005, 0.15), metadata=_meta("noise standard deviation, uniform LOW HIGH",
                                              hidden=True),
    )  # fmt: skip
    validate_every: int = field(
        default=200, metadata=_meta("steps between validations", min=1, hidden=True)
    )
    architecture: dict | None = field(default=None, metadata=_meta("sizes", hidden=True))
    phantom_mix: dict = field(default_factory=lambda: dict(DEFAULT_MIX), metadata=_MIX_META)

    def check(self) -> None:
        super().check()
        self.phantom_mix = check_mix(self.phantom_mix)
        if self.steps < 1 or self.batch < 1 or self.size < 8:
            raise ValueError("steps and batch must be >= 1 and size >= 8")
