"""The config of the DC_GAN training (:mod:`napari_mpi.enhance.dcgan_recipe`): every
hyperparameter with its default and help, from which ``napari-mpi train dcgan`` and the
Training widget are generated. Light: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..nn.training import LR_SCHEDULES, TrainConfig
from .recipe_configs import _meta

__all__ = ["IDENTITIES", "DCGANConfig", "parse_layers"]

#: forms of the identity loss
IDENTITIES = ("nce", "l1")


def parse_layers(text: str) -> tuple[int, ...] | None:
    """ "" -> None (the generator's default); "0,1,2,5,8" -> (0, 1, 2, 5, 8)."""
    s = str(text or "").strip()
    if not s:
        return None
    try:
        values = tuple(sorted({int(v) for v in s.replace(" ", ",").split(",") if v}))
    except ValueError:
        raise ValueError(f"nce_layers must be comma-separated integers, got {text!r}") from None
    if not values or values[0] < 0:
        raise ValueError(f"nce_layers must be integers >= 0, got {text!r}")
    return values


@dataclass
class DCGANConfig(TrainConfig):
    """DC_GAN's hyperparameters (see :class:`TrainConfig` for epochs, batch, lr, seed, device,
    resume).

    Data (:mod:`napari_mpi.enhance.unpaired`): ``train_images`` phantoms split into domain X
    (native, first half) and Y (deconvolved with the true PSF, second half), scan ``blur``
    (:meth:`~napari_mpi.simulation.psf_mismatch.XSpaceBlur.parse`), native SNR uniform in
    ``snr_range`` dB, Y made at ``y_snr_db`` with ``y_iterations`` RL iterations;
    ``val_images`` (native, phantom) pairs of the validation split at ``val_snr_db`` (and as
    many again at ``val_snr2_db`` when it is not 0) pick the checkpoint (lowest mean
    ``val_nrmse`` after a least-squares gain; per-SNR PSNR / SSIM are recorded as
    ``val_psnr_40dB`` and so on). ``phantom_scale`` below (1, 1) shrinks each training
    phantom by a random factor (thinner strokes and gaps than a digit filling the FOV);
    ``phantom_shift`` moves it partly out of the FOV (structures cut by the FOV's edge) along
    ``phantom_shift_axes``.

    Training: every step takes ``batch`` random ``crop`` x ``crop`` patches of each domain
    (with ``augment``, flipped across the scan direction at random: the y flip is the one
    transform that keeps the true PSF, whose relaxation tail points along +x and shifts the
    native image by about 1 mm; x flips and 90-degree turns, ``augment_turns``, would show
    G tails in four directions and leave it to guess which way to undo the shift), updates
    both discriminators (LSGAN), then
    both generators and the projection heads with lambda_gan L_GAN + lambda_con L_con +
    lambda_idt L_idt (the paper's eq. 1; each term the mean of its two directions). Adam with
    betas (``beta1``, 0.999), the papers' GAN setting. With ``ema`` > 0 the moving average of
    G's weights (decay ``ema``, warmed up over the first steps) is what validation scores and
    ``model.pt`` holds; the raw G keeps training.

    The defaults: 40 epochs of 100 steps of 2 crops of 96 x 96, and a moving average of G
    (decay 0.999, about the last 10 epochs; after epoch 6 the raw G's validation PSNR swung
    by up to 1.2 dB from one epoch to the next, the average's by at most 0.5 dB). They train
    in about an hour on 2 CPU cores (session 18, two threads: about 7 min making the domains,
    then about 80 s per epoch, timed over epochs 4-8; 53 min for 40 epochs) and took 83 min
    on one thread beside another run. The loss weights are CUT's (con 1, GAN 1, idt 1;
    temperature 0.07). Session 18 measured 40 epochs and the average against 20 epochs with
    and without it (the shipped model's TRAINING.md).
    """

    epochs: int = field(default=40, metadata=_meta("training epochs", min=1))
    batch: int = field(default=2, metadata=_meta("crops of each domain per step", min=1))
    lr: float = field(
        default=2e-4,
        metadata=_meta("Adam's (starting) learning rate (CUT / DCLGAN: 2e-4)",
                       label="learning rate", min=1e-6, max=1.0, step=1e-6),
    )  # fmt: skip
    steps_per_epoch: int = field(default=100, metadata=_meta("steps per epoch", min=1))
    crop: int = field(default=96, metadata=_meta("training crop side (pixels)", min=16))
    augment: bool = field(
        default=True,
        metadata=_meta("random flips across the scan direction (y flips: the relaxation's "
                       "tail stays along +x)"),
    )  # fmt: skip
    augment_turns: bool = field(
        default=False,
        metadata=_meta("with augment, also x flips and 90-degree turns (only for a PSF "
                       "symmetric in x and y; wrong for relaxation along the scan)"),
    )  # fmt: skip
    ema: float = field(
        default=0.999,
        metadata=_meta("decay of G's weights' moving average, validated and written (0: "
                       "none, the raw weights)", min=0.0, max=0.9999, step=1e-4),
    )  # fmt: skip
    lr_schedule: str = field(
        default="cosine", metadata=_meta("learning-rate schedule", choices=LR_SCHEDULES)
    )
    beta1: float = field(default=0.5, metadata=_meta("Adam beta1 (GANs: 0.5)", min=0.0,
                                                     max=0.999))  # fmt: skip
    blur: str = field(
        default="default",
        metadata=_meta("the scan's true PSF: default, key=value,... (e.g. relaxation_time=2e-6,"
                       "gradient_error=-0.1:0) or JSON"),
    )  # fmt: skip
    train_images: int = field(
        default=1600, metadata=_meta("training phantoms (half domain X, half domain Y)", min=2)
    )
    phantom_scale: tuple[float, float] = field(
        default=(1.0, 1.0),
        metadata=_meta("training phantoms shrunk by a factor uniform in (low, high), placed at "
                       "random (1 1: the digit fills the FOV, the paper)",
                       labels=("phantom scale from", "phantom scale to")),
    )  # fmt: skip
    phantom_shift: float = field(
        default=0.0,
        metadata=_meta("training phantoms moved by up to +- this fraction of the FOV along each "
                       "axis, what leaves it cut off (0: centred, the paper)", min=0.0,
                       max=0.99, step=0.05),
    )  # fmt: skip
    phantom_shift_axes: str = field(
        default="yx",
        metadata=_meta("axes phantom_shift moves along: yx, y (across the scan direction: "
                       "keeps digits centred along x, the scan) or x",
                       choices=("yx", "y", "x")),
    )  # fmt: skip
    val_images: int = field(default=50, metadata=_meta("validation pairs", min=1))
    snr_range: tuple[float, float] = field(
        default=(30.0, 45.0), metadata=_meta("native images' SNR, uniform in (low, high) dB")
    )
    y_snr_db: float = field(default=40.0, metadata=_meta("SNR (dB) of the images deconvolved "
                                                        "for domain Y"))  # fmt: skip
    y_iterations: int = field(
        default=400, metadata=_meta("RL iterations of domain Y (true PSF)", min=1)
    )
    val_snr_db: float = field(default=40.0, metadata=_meta("SNR (dB) of the validation pairs"))
    val_snr2_db: float = field(
        default=0.0,
        metadata=_meta("a second validation SNR (dB): val_images more pairs at it, the "
                       "checkpoint chosen on both (0: none)"),
    )  # fmt: skip
    width: int = field(default=16, metadata=_meta("generator stem channels", min=1))
    blocks: int = field(default=6, metadata=_meta("generator residual blocks", min=1))
    d_width: int = field(default=32, metadata=_meta("discriminator first-layer channels", min=1))
    d_layers: int = field(default=3, metadata=_meta("discriminator stride layers", min=1))
    lambda_con: float = field(default=1.0, metadata=_meta("weight of the contrastive loss",
                                                          min=0.0))  # fmt: skip
    lambda_gan: float = field(default=1.0, metadata=_meta("weight of the GAN loss", min=0.0))
    lambda_idt: float = field(default=1.0, metadata=_meta("weight of the identity loss",
                                                          min=0.0))  # fmt: skip
    identity: str = field(
        default="nce",
        metadata=_meta("identity loss: nce (G(y)'s features like y's, the paper) or l1 "
                       "(G(y) = y, DCLGAN)", choices=IDENTITIES),
    )  # fmt: skip
    tau: float = field(default=0.07, metadata=_meta("PatchNCE temperature", min=1e-3))
    patches: int = field(default=128, metadata=_meta("patches sampled per NCE layer", min=2))
    head_width: int = field(default=128, metadata=_meta("projection head width", min=1))
    nce_layers: str = field(
        default="",
        metadata=_meta("encoder features of the NCE loss (indices: 0 stem, 1-2 downsamplings, "
                       "3.. residual blocks; empty: stem, downs, middle and last block)"),
    )  # fmt: skip

    def check(self) -> None:
        """ValueError naming the first field out of range."""
        super().check()
        from ..simulation.psf_mismatch import XSpaceBlur

        XSpaceBlur.parse(self.blur)
        ints = ("steps_per_epoch", "crop", "train_images", "val_images", "y_iterations",
                "width", "blocks", "d_width", "d_layers", "patches", "head_width")  # fmt: skip
        mins = {"crop": 16, "train_images": 2, "patches": 2}
        for name in ints:
            value = getattr(self, name)
            if int(value) != value or value < mins.get(name, 1):
                raise ValueError(f"{name} must be an integer >= {mins.get(name, 1)}, "
                                 f"got {value!r}")  # fmt: skip
        for name in ("lambda_con", "lambda_gan", "lambda_idt"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.identity not in IDENTITIES:
            raise ValueError(f"identity must be one of {IDENTITIES}, got {self.identity!r}")
        if not 0.0 <= float(self.ema) < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema!r}")
        if not self.tau > 0:
            raise ValueError(f"tau must be > 0, got {self.tau!r}")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"beta1 must be in [0, 1), got {self.beta1!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        lo, hi = self.phantom_scale
        if not (0 < lo <= hi <= 1):
            raise ValueError(f"phantom_scale must be (low, high) with 0 < low <= high <= 1, "
                             f"got {self.phantom_scale!r}")  # fmt: skip
        if not 0 <= float(self.phantom_shift) < 1:
            raise ValueError(f"phantom_shift must be in [0, 1) (a fraction of the FOV), got "
                             f"{self.phantom_shift!r}")  # fmt: skip
        if self.val_snr2_db and float(self.val_snr2_db) == float(self.val_snr_db):
            raise ValueError(f"val_snr2_db must differ from val_snr_db ({self.val_snr_db}) or be "
                             f"0, got {self.val_snr2_db!r}")  # fmt: skip
        lo, hi = self.snr_range
        if not (lo <= hi):
            raise ValueError(f"snr_range must be (low, high) with low <= high, got "
                             f"{self.snr_range!r}")  # fmt: skip
        layers = parse_layers(self.nce_layers)
        if layers is not None and layers[-1] > 2 + int(self.blocks):
            raise ValueError(f"nce_layers: the generator has features 0..{2 + int(self.blocks)}, "
                             f"got {self.nce_layers!r}")  # fmt: skip
