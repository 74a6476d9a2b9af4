"""Conditional 3D diffusion: the noise-predicting U-Net, the noise schedule, the DDIM sampler
and DCCDM's two physics terms (DCCDM, ``../shared/seeds/002``; 3D DDPM, Yu et al. 2024).

Volumes are ``(batch, 1, D, H, W)`` (D = z, the blurred stepping axis). The diffusion runs on
``x0 = y``, the high-resolution target in the network's units (the enhancement recipes'
scaling: target / (max(degraded) x target_gain), about 0..1 with a background of 0), and the
condition is ``c`` = degraded / max(degraded). Not on ``2 y - 1``: a vessel volume is mostly
background, so its mean would be about -0.97, a mean the noised volumes carry during training
but the sampler's starting noise lacks; measured, DDIM from pure noise then drifted to a
wrong mean (x0 mean +0.75 instead of -0.97) and ended 12 dB below the degraded input.
:func:`to_diffusion` and :func:`from_diffusion` are that (identity) convention.

- :class:`DiffusionUNet3D`: eps_theta(x_t, x_LR, t): a 3D U-Net of residual blocks (GroupNorm,
  SiLU), the timestep as a sinusoidal embedding through a small MLP added inside every block,
  conditioned by concatenating the low-resolution volume to x_t (2 input channels).
- :class:`NoiseSchedule`: T steps (default 1000) of a "cosine" (Nichol & Dhariwal 2021,
  default) or "linear" (Ho et al. 2020: 1e-4 .. 0.02) beta schedule; ``q_sample`` noises a
  clean volume, ``predict_x0`` inverts it given the predicted noise.
- What the network predicts (``prediction``): the noise ("eps", the paper's), v = sqrt(a) eps -
  sqrt(1 - a) x0 ("v", Salimans & Ho 2022: the default here, see
  :mod:`napari_mpi.enhance.diffusion_config`) or x0; :meth:`NoiseSchedule.target` and
  :meth:`NoiseSchedule.split` convert.
- :func:`ddim_sample`: DDIM (Song et al. 2021) over ``steps`` evenly spaced timesteps, ``eta``
  0 (deterministic given the starting noise) .. 1 (DDPM-like), the predicted clean volume
  clipped to a range at every step.
- :func:`surrogate_degradation`: the paper's D(x) = U(P2(G3(x))): a 3D Gaussian blur (one
  sigma, or one per axis z, y, x, in voxels), 2x average-pool down-sampling and trilinear
  up-sampling back to the input size.
- :func:`degrade` (the fitted surrogate of the scan, ``k D(x) + p mean(x)``, the pedestal
  standing for the PSF's long tails; :func:`fit_surrogate` fits k and p),
  :func:`consistency_loss` (|| degrade(x0_hat) - x_LR ||, L1 or L2) and :func:`frequency_loss`
  (the paper's equation 2: 3D FFT, spherical low / high masks, low band against x_LR, high
  band against x_HR, weighted by gamma), each per volume so a recipe can weight them per
  timestep.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import Progress, run
from .enhance3d import use_fast_convs

__all__ = [
    "PREDICTIONS",
    "SCHEDULES",
    "DiffusionUNet3D",
    "NoiseSchedule",
    "PSFBlur",
    "consistency_loss",
    "ddim_sample",
    "ddim_timesteps",
    "degrade",
    "fit_surrogate",
    "frequency_loss",
    "frequency_masks",
    "from_diffusion",
    "iter_ddim_sample",
    "surrogate_degradation",
    "timestep_embedding",
    "to_diffusion",
]

SCHEDULES = ("cosine", "linear")
#: what the network predicts: the noise (the paper's), v = sqrt(a) eps - sqrt(1 - a) x0
#: (Salimans & Ho 2022) or the clean volume
PREDICTIONS = ("eps", "v", "x0")


def to_diffusion(y: torch.Tensor) -> torch.Tensor:
    """Network units (about 0..1, background 0) -> the diffusion's variable: ``y`` itself
    (see the module docstring)."""
    return y


def from_diffusion(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_diffusion`."""
    return x


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps ``t`` (B,) -> (B, dim) (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2)) if dim % 2 else emb


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class _TimeResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + the timestep's projection, GroupNorm-SiLU-conv, + skip."""

    def __init__(self, c_in: int, c_out: int, t_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv3d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class DiffusionUNet3D(nn.Module):
    """eps_theta(x_t, x_LR, t) for (batch, 1, D, H, W) volumes (see the module docstring).

    Parameters
    ----------
    widths : tuple of int
        Channels per level, finest first (``len(widths) - 1`` 2x poolings; sizes that are
        not a multiple of ``2 ** (len(widths) - 1)`` are edge-padded and cropped back).
    blocks : int
        Residual blocks per level on the way down (one more on the way up, after the skip).
    time_dim : int
        Width of the timestep embedding's MLP.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), blocks: int = 1,
                 time_dim: int = 64) -> None:  # fmt: skip
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1 or int(blocks) < 1 or int(time_dim) < 2:
            raise ValueError(
                "DiffusionUNet3D: widths must be positive (at least one level), blocks >= 1 "
                f"and time_dim >= 2, got {widths}, {blocks}, {time_dim}"
            )
        self.config = {"class": "DiffusionUNet3D", "widths": list(widths),
                       "blocks": int(blocks), "time_dim": int(time_dim)}  # fmt: skip
        self.levels = len(widths)
        self.time_dim = int(time_dim)
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.stem = nn.Conv3d(2, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        prev = widths[0]
        for w in widths:
            self.down.append(nn.ModuleList(
                _TimeResBlock(prev if i == 0 else w, w, time_dim) for i in range(int(blocks))
            ))  # fmt: skip
            prev = w
        self.middle = _TimeResBlock(widths[-1], widths[-1], time_dim)
        self.up = nn.ModuleList()
        for w_skip, w_low in zip(widths[-2::-1], widths[:0:-1], strict=True):
            self.up.append(_TimeResBlock(w_low + w_skip, w_skip, time_dim))
        self.out_norm = nn.GroupNorm(_groups(widths[0]), widths[0])
        self.out = nn.Conv3d(widths[0], 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # starts predicting eps = 0
        nn.init.zeros_(self.out.bias)
        use_fast_convs(self)

    def forward(self, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Noise predicted in ``x_t`` (B, 1, D, H, W) given ``cond`` (same shape, the
        low-resolution volume in the diffusion's range) and timesteps ``t`` (B,) or ()."""
        if x_t.ndim != 5 or cond.shape != x_t.shape or x_t.shape[1] != 1:
            raise ValueError(
                "DiffusionUNet3D: x_t and cond must be (batch, 1, D, H, W) of one shape, got "
                f"{tuple(x_t.shape)} and {tuple(cond.shape)}"
            )
        t = torch.as_tensor(t, device=x_t.device).reshape(-1).expand(x_t.shape[0])
        temb = self.time_mlp(timestep_embedding(t, self.time_dim))
        size = x_t.shape[2:]
        f = 2 ** (self.levels - 1)
        pad = [a for s in reversed(size) for a in (0, (-s) % f)]
        h = torch.cat([x_t, cond], dim=1)
        if any(pad):
            h = F.pad(h, pad, mode="replicate")
        h = self.stem(h)
        skips = []
        for i, level in enumerate(self.down):
            if i:
                h = F.avg_pool3d(h, 2)
            for block in level:
                h = block(h, temb)
            skips.append(h)
        h = self.middle(h, temb)
        for block, skip in zip(self.up, skips[-2::-1], strict=True):
            h = F.interpolate(h, size=skip.shape[2:], mode="trilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1), temb)
        out = self.out(F.silu(self.out_norm(h)))
        return out[:, :, : size[0], : size[1], : size[2]]


class NoiseSchedule:
    """The forward process q(x_t | x_0) = N(sqrt(a_t) x_0, (1 - a_t) I), a_t = prod(1 - beta).

    Parameters
    ----------
    steps : int
        T, the number of diffusion steps (timesteps 0 .. T - 1).
    kind : {"cosine", "linear"}
        "cosine": a_t = cos^2(((t + 1) / T + s) / (1 + s) pi / 2) / (same at 0), s = 0.008,
        betas capped at 0.999; "linear": betas from 1e-4 to 0.02 (scaled by 1000 / T).
    """

    def __init__(self, steps: int = 1000, kind: str = "cosine") -> None:
        if int(steps) < 2:
            raise ValueError(f"diffusion steps must be >= 2, got {steps!r}")
        if kind not in SCHEDULES:
            raise ValueError(f"noise schedule must be one of {SCHEDULES}, got {kind!r}")
        self.steps, self.kind = int(steps), kind
        n = self.steps
        if kind == "linear":
            scale = 1000.0 / n
            betas = torch.linspace(1e-4 * scale, 0.02 * scale, n, dtype=torch.float64)
        else:
            s = 0.008
            u = torch.arange(n + 1, dtype=torch.float64) / n
            f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        #: a_t for t = 0 .. T - 1, float64
        self.alpha_bar = torch.cumprod(1 - betas, dim=0)

    def a(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """a_t for timesteps ``t`` (B,), shaped (B, 1, 1, 1, 1) on ``like``'s device/dtype;
        t = -1 gives 1 (the clean end)."""
        t = torch.as_tensor(t).reshape(-1).cpu().long()
        values = torch.where(t >= 0, self.alpha_bar[t.clamp(min=0)], torch.ones(()).double())
        return values.to(like.device, like.dtype).reshape(-1, 1, 1, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise."""
        a = self.a(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)."""
        a = self.a(t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
               prediction: str = "eps") -> torch.Tensor:  # fmt: skip
        """What a network of ``prediction`` (:data:`PREDICTIONS`) should output for x_t =
        q_sample(x0, t, noise)."""
        if prediction == "eps":
            return noise
        if prediction == "x0":
            return x0
        if prediction == "v":
            a = self.a(t, x0)
            return a.sqrt() * noise - (1 - a).sqrt() * x0
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")

    def split(self, x_t: torch.Tensor, t: torch.Tensor, out: torch.Tensor,
              prediction: str = "eps") -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """``(x0_hat, eps_hat)`` from a network output of ``prediction``."""
        a = self.a(t, x_t)
        if prediction == "eps":
            return (x_t - (1 - a).sqrt() * out) / a.sqrt(), out
        if prediction == "x0":
            return out, (x_t - a.sqrt() * out) / (1 - a).sqrt()
        if prediction == "v":
            return a.sqrt() * x_t - (1 - a).sqrt() * out, (1 - a).sqrt() * x_t + a.sqrt() * out
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


def ddim_timesteps(total: int, steps: int) -> list[int]:
    """``steps`` timesteps T / steps apart, descending to 0 ("leading" spacing: for T = 1000
    and 20 steps, 950, 900, ..., 0). Not from T - 1: with the cosine schedule a_{T-1} is
    2e-9, so the first x0 estimate there is the noise estimate's error times 2e4."""
    if int(steps) < 1:
        raise ValueError(f"sampling steps must be >= 1, got {steps!r}")
    steps = min(int(steps), int(total))
    stride = int(total) // steps
    return list(range(0, stride * steps, stride))[::-1]


def ddim_sample(model: nn.Module, cond: torch.Tensor, schedule: NoiseSchedule, steps: int = 20,
                eta: float = 0.0, generator: torch.Generator | None = None,
                clip: tuple[float, float] | None = (-2.5, 2.5),
                noise: torch.Tensor | None = None,
                prediction: str = "eps") -> torch.Tensor:  # fmt: skip
    """:func:`iter_ddim_sample` run to the end: the predicted x0 (B, 1, D, H, W)."""
    return run(iter_ddim_sample(model, cond, schedule, steps, eta, generator, clip, noise,
                                prediction))  # fmt: skip


def iter_ddim_sample(
    model: nn.Module,
    cond: torch.Tensor,
    schedule: NoiseSchedule,
    steps: int = 20,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = (-2.5, 2.5),
    noise: torch.Tensor | None = None,
    prediction: str = "eps",
) -> Generator[Progress, None, torch.Tensor]:
    """DDIM sampling of x0 given the condition ``cond`` (B, 1, D, H, W), diffusion range.

    Parameters
    ----------
    model : DiffusionUNet3D
        eps_theta (called under ``torch.no_grad``).
    schedule : NoiseSchedule
    steps : int
        Timesteps visited (>= 1; at most T).
    eta : float
        0: deterministic DDIM; 1: the DDPM posterior's variance.
    generator : torch.Generator or None
        Draws the starting noise (unless ``noise``) and the fresh noise of eta > 0.
    clip : (float, float) or None
        Range of the predicted clean volume at every step (the noise is recomputed from the
        clipped prediction); None: no clipping.
    noise : tensor or None
        The starting x_T (shape of ``cond``); drawn from ``generator`` when None.
    prediction : {"eps", "v", "x0"}
        What ``model`` outputs (:data:`PREDICTIONS`).

    Yields
    ------
    Progress
        After each of the n steps (a consumer may stop the sampling there).

    Returns
    -------
    tensor
        The predicted x0 (B, 1, D, H, W), diffusion range.
    """
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta!r}")
    times = ddim_timesteps(schedule.steps, steps)
    x = noise
    if x is None:
        x = torch.randn(cond.shape, generator=generator, dtype=cond.dtype, device="cpu")
        x = x.to(cond.device)
    x0 = x
    for i, t in enumerate(times):
        with torch.no_grad():  # not across the yield: grad mode is per thread
            t_prev = times[i + 1] if i + 1 < len(times) else -1
            tt = torch.full((cond.shape[0],), t, dtype=torch.long, device=cond.device)
            a = schedule.a(tt, x)
            a_prev = schedule.a(torch.full_like(tt, t_prev), x)
            x0, eps = schedule.split(x, tt, model(x, cond, tt), prediction)
            if clip is not None:
                x0 = x0.clamp(*clip)
                eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
            if t_prev >= 0:
                sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).clamp(min=0).sqrt()
                direction = (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
                x = a_prev.sqrt() * x0 + direction
                if eta > 0:
                    z = torch.randn(cond.shape, generator=generator, dtype=cond.dtype)
                    x = x + sigma * z.to(cond.device)
        yield Progress(i + 1, len(times), f"DDIM step {i + 1}/{len(times)}")
    return x0


def _gauss1d(sigma: float, device, dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    u = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (u / sigma) ** 2)
    return k / k.sum()


def surrogate_degradation(x: torch.Tensor, sigma: float | tuple[float, ...] = 1.0) -> torch.Tensor:
    """D(x) = U(P2(G3(x))) on (B, 1, D, H, W): Gaussian blur (``sigma`` in voxels, one value
    or three for z, y, x; 0 skips an axis; replicate padding), 2x average-pool down-sampling
    (odd sizes: the last plane repeated) and trilinear up-sampling back to the input size."""
    sigmas = (float(sigma),) * 3 if isinstance(sigma, int | float) else tuple(map(float, sigma))
    if len(sigmas) != 3 or min(sigmas) < 0:
        raise ValueError(f"surrogate sigma must be one or three values >= 0, got {sigma!r}")
    size = x.shape[2:]
    h = x
    for axis, s in enumerate(sigmas):
        if s <= 0:
            continue
        k = _gauss1d(s, x.device, x.dtype)
        r = (len(k) - 1) // 2
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = len(k)
        pad = [0] * 6
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = r
        h = F.conv3d(F.pad(h, pad, mode="replicate"), k.reshape(shape))
    odd = [a for s in reversed(size) for a in (0, s % 2)]
    if any(odd):
        h = F.pad(h, odd, mode="replicate")
    h = F.avg_pool3d(h, 2)
    return F.interpolate(h, size=size, mode="trilinear", align_corners=False)


class PSFBlur:
    """Linear 3D convolution with a scan's PSF ("same" size, zero outside the volume) by FFT:
    the exact blur of the layered scan, an alternative to the paper's surrogate.

    Parameters
    ----------
    psf : array, shape (2 D - 1, 2 H - 1, 2 W - 1) or any odd shape
        The PSF on the volumes' voxels, centre at its middle index
        (:meth:`napari_mpi.enhance.Degradation.psf`).
    shape : tuple of int
        (D, H, W) of the volumes it blurs.
    device : torch device or None
    """

    def __init__(self, psf, shape: tuple[int, int, int], device=None) -> None:
        kernel = torch.as_tensor(psf, dtype=torch.float32)
        if kernel.ndim != 3 or any(n % 2 == 0 for n in kernel.shape):
            raise ValueError(f"PSFBlur: the PSF must be a 3D array of odd sides, got "
                             f"{tuple(kernel.shape)}")  # fmt: skip
        self.shape = tuple(int(n) for n in shape)
        self.size = [n + m - 1 for n, m in zip(self.shape, kernel.shape, strict=True)]
        self.start = [(m - 1) // 2 for m in kernel.shape]
        self.kernel = torch.fft.rfftn(kernel.to(device), s=self.size)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """(B, C, D, H, W) -> the same shape, blurred."""
        if tuple(y.shape[2:]) != self.shape:
            raise ValueError(f"PSFBlur: made for volumes {self.shape}, got {tuple(y.shape[2:])}")
        dims = (2, 3, 4)
        kernel = self.kernel.to(y.device)
        full = torch.fft.irfftn(torch.fft.rfftn(y.float(), s=self.size, dim=dims) * kernel,
                                s=self.size, dim=dims)  # fmt: skip
        (a, b, c), (d, h, w) = self.start, self.shape
        return full[..., a : a + d, b : b + h, c : c + w].to(y.dtype)


def consistency_loss(
    y_hat: torch.Tensor,
    c: torch.Tensor,
    gain: float,
    pedestal: float = 0.0,
    sigma: float | tuple[float, ...] = 1.0,
    norm: str = "l1",
    blur=None,
) -> torch.Tensor:
    """Per-volume || gain D(y_hat) + pedestal mean(y_hat) - c || (B,): mean absolute ("l1")
    or mean squared ("l2") residual, ``y_hat`` the predicted target and ``c`` the
    low-resolution volume (network units; ``gain`` and ``pedestal`` map the surrogate's
    output to c's units, the pedestal standing for the PSF's long tails). D is the paper's
    surrogate with ``sigma``, or ``blur`` (e.g. a :class:`PSFBlur`) when given."""
    return _norm(degrade(y_hat, gain, pedestal, sigma, blur) - c, norm)


def degrade(y: torch.Tensor, gain: float, pedestal: float = 0.0,
            sigma: float | tuple[float, ...] = 1.0, blur=None) -> torch.Tensor:  # fmt: skip
    """The fitted model of the scan: ``gain D(y) + pedestal mean(y)`` (B, 1, D, H, W), D the
    surrogate U(P2(G3)) with ``sigma``, or ``blur(y)`` when ``blur`` is given."""
    out = gain * (surrogate_degradation(y, sigma) if blur is None else blur(y))
    if pedestal:
        out = out + pedestal * y.mean(dim=(2, 3, 4), keepdim=True)
    return out


def _norm(r: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "l1":
        return r.abs().flatten(1).mean(dim=1)
    if norm == "l2":
        return (r**2).flatten(1).mean(dim=1)
    raise ValueError(f"consistency norm must be 'l1' or 'l2', got {norm!r}")


def fit_surrogate(
    y: torch.Tensor, c: torch.Tensor, sigma: float | tuple[float, ...] = 1.0, blur=None
) -> tuple[float, float, float]:
    """Least-squares ``(gain, pedestal, relative residual)`` of c ~ gain D(y) + pedestal
    mean(y) over a batch of pairs (B, 1, D, H, W); D as in :func:`degrade`."""
    d = surrogate_degradation(y.double(), sigma) if blur is None else blur(y).double()
    mu = y.double().mean(dim=(2, 3, 4), keepdim=True).expand_as(d)
    a = torch.stack([d.flatten(), mu.flatten()], dim=1)
    b = c.double().flatten()[:, None]
    sol = torch.linalg.lstsq(a, b).solution[:, 0]
    residual = torch.linalg.norm(a @ sol - b[:, 0]) / torch.linalg.norm(b).clamp(min=1e-30)
    return float(sol[0]), float(sol[1]), float(residual)


def frequency_masks(shape: tuple[int, int, int], low: float, high: float, device=None):
    """Spherical binary masks (D, H, W) of the 3D FFT: radius |f| <= ``low`` and > ``high``,
    f in cycles per voxel (0 .. 0.87 in a corner)."""
    freqs = [torch.fft.fftfreq(int(n), device=device) for n in shape]
    fz, fy, fx = torch.meshgrid(*freqs, indexing="ij")
    radius = torch.sqrt(fz**2 + fy**2 + fx**2)
    return (radius <= low).float(), (radius > high).float()


def frequency_loss(
    y_hat: torch.Tensor,
    y_low: torch.Tensor,
    y_high: torch.Tensor,
    low: float = 0.125,
    high: float = 0.125,
    gamma: float = 0.3,
    y_hat_low: torch.Tensor | None = None,
) -> torch.Tensor:
    """DCCDM's equation 2, per volume (B,): ||M_low (F(y_hat) - F(y_low))||_1 + gamma
    ||M_high (F(y_hat) - F(y_high))||_1, each the mean modulus over its mask (orthonormal 3D
    FFT, so a voxel-level error has the same size in both domains). ``y_low`` is the
    low-resolution volume in the target's units, ``y_high`` the high-resolution target.
    ``y_hat_low``, when given, replaces ``y_hat`` in the low band (e.g. the prediction seen
    through the scan, to be compared with the scan itself)."""
    m_low, m_high = frequency_masks(tuple(y_hat.shape[2:]), low, high, y_hat.device)
    dims = (2, 3, 4)
    f_hat = torch.fft.fftn(y_hat, dim=dims, norm="ortho")
    f_hat_low = f_hat if y_hat_low is None else torch.fft.fftn(y_hat_low, dim=dims, norm="ortho")
    d_low = (f_hat_low - torch.fft.fftn(y_low, dim=dims, norm="ortho")).abs() * m_low
    d_high = (f_hat - torch.fft.fftn(y_high, dim=dims, norm="ortho")).abs() * m_high
    n_low, n_high = m_low.sum().clamp(min=1), m_high.sum().clamp(min=1)
    return d_low.flatten(1).sum(1) / n_low + gamma * d_high.flatten(1).sum(1) / n_high
