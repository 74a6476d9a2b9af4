"""Configs of the two conditional diffusion trainings: ``ddpm3d`` (3D DDPM, the baseline) and
``dccdm`` (the same network and sampler plus DCCDM's degradation-consistency and
frequency-alignment losses). Light: no torch. The recipe is
:class:`napari_mpi.enhance.diffusion_recipe.DiffusionRecipe`; the methods are registered by
:mod:`napari_mpi.enhance.diffusion`.

Choices where the paper is silent (each a field; the defaults are the shipped models'):

- noise schedule: cosine (Nichol & Dhariwal 2021), T = 1000;
- the network predicts v = sqrt(a_t) eps - sqrt(1 - a_t) x0 (Salimans & Ho 2022), not the
  noise as the paper writes ("eps" is a choice): measured with eps prediction (3D DDPM, 750
  steps of 4 pairs), DDIM from pure noise drifted (the sample's mean went negative, by 0.03 of
  the vessels' peak, and was never corrected: at large t the noise estimate's errors are
  divided by sqrt(a_t), 1 / 0.08 at t = 950) and ended at 13 dB, below the degraded input
  (17.8 dB), while the same network denoised a truly noised target to 21-25 dB from t = 600 or
  300; v gives x0 = sqrt(a_t) x_t - sqrt(1 - a_t) v, well conditioned at every t;
- sampler: DDIM, 20 steps T / 20 apart from 950 down to 0, eta 0 (deterministic given the
  starting noise), the predicted clean volume clipped to [-``clip_max``, ``clip_max``]
  (network units) at every step and the result to >= 0 at inference;
- weights: an exponential moving average of the weights (``ema``) is validated and written;
- physics terms (dccdm): computed on x0_hat = the clean volume implied by the predicted noise,
  and weighted per sample by a_t (``physics_weighting="alpha-bar"``: at large t, x0_hat is
  mostly noise and 1 / sqrt(a_t) amplifies it), or at every t equally ("uniform");
- the consistency operator D (``dc_operator``): by default the training scan's own PSF
  (``Degradation.psf``, an FFT convolution): measured on 64 training pairs, the fitted
  k PSF * x + p mean(x) leaves 0.032 of the low-resolution volume unexplained (the noise) and
  the target is the minimum of the consistency loss among the target, its z-blurred copies,
  0.9 / 1.1 x the target and the rescaled low-resolution volume; with the paper's surrogate
  (``"surrogate"``) both physics terms were lower for the z-blurred target and far lower for
  the low-resolution volume than for the target itself, pulling the model towards the input
  (a DCCDM trained so ended 1.5 dB under the 3D DDPM). The frequency loss's low band likewise
  compares F(D(x0_hat)) with F(x_LR) by default (``freq_low_target="degraded"``; minimal at the
  target), the paper's F(x0_hat) against the rescaled F(x_LR) being ``"lr"``;
- the paper's surrogate D(x) = U(P2(G3(x))) with sigma (4, 2, 2) voxels (z, y, x) plus a flat
  pedestal term: measured on 24 training pairs of the default scan (the Langevin PSF's long
  tails put a pedestal of about 0.1-0.35 of the maximum under every volume), a pure blur leaves
  0.78 of the low-resolution volume unexplained at this sigma (0.87 at 2, 1, 1; 0.66 at 6, 3,
  3), blur + pedestal 0.25 (0.30 at 2, 1, 1; 0.19 at 6, 3, 3); the gain and pedestal are least-
  squares fits on the training pairs, recorded in the card;
- loss weights (the paper gives none): at 1.0 each, the physics terms' gradients were 5-20x
  the diffusion loss's (L1 terms keep their gradient size as they shrink) and the diffusion
  loss stayed at 1.0 (predicting no noise) for the first 150 steps; at lambda_dc 0.05 and
  lambda_freq 0.03 their gradients are about those of the diffusion loss and it falls as
  fast as without them (fresh network, 60 steps of 4 training pairs, measured with an
  ad-hoc script); with the PSF operator, lambda_dc 0.05 and lambda_freq 0.1 give gradients
  about 0.75 and 0.4 times the diffusion loss's (fresh network, 3 batches of 4 pairs);
- frequency masks: complementary at radius 0.05 cycles / voxel (the first 1-2 harmonics of a
  32^3 volume: where the scan keeps most of the signal, a_t-independent), gamma 0.3 (paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .recipe_configs import VolumeConfig, _meta

__all__ = [
    "DC_OPERATORS",
    "DEFAULT_SIGMA",
    "DIFFUSION_CONFIGS",
    "FREQ_LOW_TARGETS",
    "NORMS",
    "PREDICTIONS",
    "SCHEDULES",
    "WEIGHTINGS",
    "DCCDMConfig",
    "DDPM3DConfig",
]

#: beta schedules (:class:`napari_mpi.nn.diffusion3d.NoiseSchedule`)
SCHEDULES = ("cosine", "linear")
#: network outputs (:data:`napari_mpi.nn.diffusion3d.PREDICTIONS`)
PREDICTIONS = ("eps", "v", "x0")
NORMS = ("l1", "l2")
#: the blur D of the consistency term: the scan's own PSF, or the paper's U(P2(G3))
DC_OPERATORS = ("psf", "surrogate")
#: what the frequency loss's low band compares: the prediction seen through the scan with
#: the scan ("degraded"), or the prediction itself with the rescaled scan (the paper's "lr")
FREQ_LOW_TARGETS = ("degraded", "lr")
WEIGHTINGS = ("alpha-bar", "uniform")
#: the surrogate's default Gaussian sigma (voxels, z, y, x); see the module docstring
DEFAULT_SIGMA = (4.0, 2.0, 2.0)


@dataclass
class DDPM3DConfig(VolumeConfig):
    """``ddpm3d``: the conditional 3D DDPM (network, schedule, sampler, EMA, budget).

    Attributes
    ----------
    widths : tuple of int
        Channels per U-Net level, finest first.
    blocks : int
        Residual blocks per level (down path).
    time_dim : int
        Timestep-embedding width.
    timesteps : int
        T, the diffusion steps of training.
    schedule : {"cosine", "linear"}
        Beta schedule.
    prediction : {"v", "eps", "x0"}
        What the network outputs (see the module docstring).
    sample_steps : int
        DDIM steps of validation and (default) inference.
    eta : float
        DDIM eta (0 deterministic .. 1 DDPM-like).
    clip_max : float
        Clip of the predicted clean volume to [-clip_max, clip_max] in network units (target /
        (max(degraded) x target_gain), whose maximum is about 1-2 on VesselMNIST3D).
    ema : float
        Decay of the weights' moving average (0: no averaging, the raw weights are written).
    val_sample_volumes : int
        Validation volumes sampled after every epoch (their mean L1 picks the checkpoint).
    init_from : str
        A model folder of the same method and architecture whose (averaged) weights start
        both the network and its moving average ('': a fresh network). ``--resume`` continues
        an interrupted run with its own options; this starts a new run (new schedule, new
        budget) from a finished one, e.g. to train a model further in a later session.
    """

    epochs: int = field(default=10, metadata=_meta("training epochs", min=1))
    lr: float = field(
        default=1e-3, metadata=_meta("Adam's (starting) learning rate", min=1e-6, max=1.0)
    )
    loss: str = field(default="l1", metadata=_meta("unused (diffusion: noise MSE)", hidden=True))
    smooth_beta: float = field(
        default=1.0, metadata=_meta("unused (no SmoothL1 loss)", min=1e-6, hidden=True)
    )
    steps_per_epoch: int = field(
        default=250, metadata=_meta("steps per epoch (0: one pass over the volumes)", min=0)
    )
    widths: tuple[int, ...] = field(
        default=(16, 32, 64),
        metadata=_meta("channels per U-Net level, finest first", nargs="+", metavar="C"),
    )
    blocks: int = field(default=1, metadata=_meta("residual blocks per level", min=1))
    time_dim: int = field(default=64, metadata=_meta("timestep-embedding width", min=2))
    timesteps: int = field(default=1000, metadata=_meta("diffusion steps T", min=2))
    schedule: str = field(default="cosine", metadata=_meta("beta schedule", choices=SCHEDULES))
    prediction: str = field(
        default="v", metadata=_meta("network output: v, eps (noise) or x0", choices=PREDICTIONS)
    )
    sample_steps: int = field(
        default=20, metadata=_meta("DDIM steps (validation and default inference)", min=1)
    )
    eta: float = field(default=0.0, metadata=_meta("DDIM eta: 0 deterministic, 1 DDPM-like"))
    clip_max: float = field(
        default=2.5,
        metadata=_meta("clip of the predicted clean volume to +-clip_max (network units)"),
    )
    ema: float = field(
        default=0.995, metadata=_meta("decay of the weights' moving average (0: none)")
    )
    val_sample_volumes: int = field(
        default=16, metadata=_meta("validation volumes sampled per epoch", min=1)
    )
    init_from: str = field(
        default="",
        metadata=_meta("a model folder of this method whose weights start the run (continue "
                       "a finished run with a new budget; '' for a fresh network)",
                       folder=True),
    )  # fmt: skip

    def check(self) -> None:
        super().check()
        if not self.widths or min(int(w) for w in self.widths) < 1:
            raise ValueError(f"widths must be positive integers, got {self.widths!r}")
        for name, low in (("blocks", 1), ("time_dim", 2), ("timesteps", 2),
                          ("sample_steps", 1), ("val_sample_volumes", 1)):  # fmt: skip
            if int(getattr(self, name)) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)!r}")
        if int(self.sample_steps) > int(self.timesteps):
            raise ValueError(
                f"sample_steps must be <= timesteps ({self.timesteps}), got {self.sample_steps!r}"
            )
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= float(self.eta) <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {self.eta!r}")
        if not float(self.clip_max) > 0:
            raise ValueError(f"clip_max must be > 0, got {self.clip_max!r}")
        if not 0.0 <= float(self.ema) < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema!r}")
        if self.scale == "none":
            raise ValueError("scale must be input-max or input-max-gain for a diffusion model")

    def network_kwargs(self) -> dict:
        return {"widths": tuple(int(w) for w in self.widths), "blocks": int(self.blocks),
                "time_dim": int(self.time_dim)}  # fmt: skip

    # the physics terms: none for the baseline
    def physics(self) -> dict:
        """The physics terms' settings (DDPM: weights 0)."""
        return {"lambda_dc": 0.0, "lambda_freq": 0.0, "dc_operator": "psf",
                "freq_low_target": "degraded"}  # fmt: skip


@dataclass
class DCCDMConfig(DDPM3DConfig):
    """``dccdm``: :class:`DDPM3DConfig` plus the degradation-consistency and
    frequency-alignment losses (see the module docstring for the choices).

    Attributes
    ----------
    lambda_dc : float
        Weight of || k D(x0_hat) + p mean(x0_hat) - x_LR ||.
    dc_operator : {"psf", "surrogate"}
        D: the scan's PSF (``Degradation.psf`` of the training scan, an FFT convolution;
        default) or the paper's surrogate U(P2(G3(x))) with ``dc_sigma``.
    dc_sigma : tuple of float
        The surrogate's Gaussian sigma (voxels), z, y, x (one value: isotropic).
    dc_norm : {"l1", "l2"}
        Norm of the consistency residual (mean absolute or mean squared).
    lambda_freq : float
        Weight of the frequency-alignment loss (equation 2).
    gamma : float
        Weight of its high band (paper: 0.3).
    freq_low, freq_high : float
        Radii (cycles / voxel) of the low mask (|f| <= low) and the high mask (|f| > high).
    freq_low_target : {"degraded", "lr"}
        The low band compares F(degrade(x0_hat)) with F(x_LR) ("degraded", default) or
        F(x0_hat) with F((x_LR - p mean) / k) (the paper's form, "lr").
    physics_weighting : {"alpha-bar", "uniform"}
        The physics terms per sample times a_t, or at every t equally.
    """

    lambda_dc: float = field(default=0.05, metadata=_meta("weight of the consistency loss"))
    dc_operator: str = field(
        default="psf",
        metadata=_meta("blur of the consistency term: the scan's PSF, or the paper's "
                       "surrogate U(P2(G3)) with --dc-sigma", choices=DC_OPERATORS),
    )  # fmt: skip
    dc_sigma: tuple[float, ...] = field(
        default=DEFAULT_SIGMA,
        metadata=_meta("surrogate blur sigma in voxels (z y x, or one value)", nargs="+",
                       metavar="S"),
    )  # fmt: skip
    dc_norm: str = field(default="l1", metadata=_meta("consistency norm", choices=NORMS))
    lambda_freq: float = field(default=0.1, metadata=_meta("weight of the frequency loss"))
    gamma: float = field(default=0.3, metadata=_meta("high-band weight (paper: 0.3)"))
    freq_low: float = field(default=0.05, metadata=_meta("low-mask radius (cycles/voxel)"))
    freq_high: float = field(default=0.05, metadata=_meta("high-mask radius (cycles/voxel)"))
    freq_low_target: str = field(
        default="degraded",
        metadata=_meta("low band: the prediction through the scan vs the scan (degraded), or "
                       "the prediction vs the rescaled scan (lr, the paper's)",
                       choices=FREQ_LOW_TARGETS),
    )  # fmt: skip
    physics_weighting: str = field(
        default="alpha-bar",
        metadata=_meta("physics terms times a_t, or uniform over t", choices=WEIGHTINGS),
    )

    def check(self) -> None:
        super().check()
        for name in ("lambda_dc", "lambda_freq", "gamma"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        sig = tuple(float(s) for s in self.dc_sigma)
        if len(sig) not in (1, 3) or min(sig) < 0:
            raise ValueError(f"dc_sigma must be one or three values >= 0, got {self.dc_sigma!r}")
        if self.dc_operator not in DC_OPERATORS:
            raise ValueError(f"dc_operator must be one of {DC_OPERATORS}, got {self.dc_operator!r}")
        if self.freq_low_target not in FREQ_LOW_TARGETS:
            raise ValueError(
                f"freq_low_target must be one of {FREQ_LOW_TARGETS}, got {self.freq_low_target!r}"
            )
        if self.dc_norm not in NORMS:
            raise ValueError(f"dc_norm must be one of {NORMS}, got {self.dc_norm!r}")
        if not (float(self.freq_low) > 0 and float(self.freq_high) >= 0):
            raise ValueError(
                f"freq_low must be > 0 and freq_high >= 0, got {self.freq_low!r}, "
                f"{self.freq_high!r}"
            )
        if self.physics_weighting not in WEIGHTINGS:
            raise ValueError(
                f"physics_weighting must be one of {WEIGHTINGS}, got {self.physics_weighting!r}"
            )

    def physics(self) -> dict:
        sig = tuple(float(s) for s in self.dc_sigma)
        return {"lambda_dc": float(self.lambda_dc), "dc_sigma": list(sig * 3 if len(sig) == 1
                                                                     else sig),
                "dc_norm": self.dc_norm, "dc_operator": self.dc_operator,
                "freq_low_target": self.freq_low_target,
                "lambda_freq": float(self.lambda_freq),
                "gamma": float(self.gamma), "freq_low": float(self.freq_low),
                "freq_high": float(self.freq_high),
                "physics_weighting": self.physics_weighting}  # fmt: skip


#: the config of each diffusion method
DIFFUSION_CONFIGS: dict[str, type[DDPM3DConfig]] = {"ddpm3d": DDPM3DConfig, "dccdm": DCCDMConfig}
