"""Training losses for image outputs: MSE, L1, SSIM and the mixed L1+SSIM.

Images are (batch, H, W) tensors. SSIM uses a Gaussian window (7 x 7, sigma 1.5, valid region
only) and the constants of Wang et al. 2004 (K1 = 0.01, K2 = 0.03) with the data range of each
target image (its maximum, as in :func:`napari_mpi.metrics.psnr`), so it is differentiable and
tracks the metric the benchmark reports. The mixed loss follows Zhao et al. 2017 (IEEE TCI,
"Loss functions for image restoration with neural networks"): ``w (1 - SSIM) + (1 - w) L1``
with ``w = 0.84`` by default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES = ("mse", "l1", "l1+ssim")


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 7, sigma: float = 1.5):
    """Mean SSIM per sample, shape (batch,); images smaller than the window use their size."""
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"ssim: needs two (batch, H, W) tensors, got {pred.shape}, {target.shape}")
    size = min(window, *pred.shape[-2:])
    w = _gaussian_window(size, sigma, pred.dtype).to(pred.device)
    x, y = pred[:, None], target[:, None]
    peak = target.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None, None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x**2
    syy = F.conv2d(y * y, w) - mu_y**2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(dim=1)


def make_loss(
    name: str, ssim_weight: float = 0.84
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss ``name`` (one of :data:`LOSSES`) as ``f(pred, target) -> scalar``.

    MSE and L1 are computed on images divided by each target's maximum, so every sample weighs
    the same whatever its concentration and the mixed loss's two terms share one scale.
    """
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {name!r}")
    if not 0.0 <= ssim_weight <= 1.0:
        raise ValueError(f"ssim_weight must be in [0, 1], got {ssim_weight}")

    def scaled(pred: torch.Tensor, target: torch.Tensor):
        peak = target.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
        return pred / peak, target / peak

    if name == "mse":
        return lambda p, t: torch.mean(torch.sub(*scaled(p, t)) ** 2)
    if name == "l1":
        return lambda p, t: torch.mean(torch.abs(torch.sub(*scaled(p, t))))

    def l1_ssim(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ps, ts = scaled(p, t)
        return ssim_weight * (1 - ssim(ps, ts)).mean() + (1 - ssim_weight) * torch.mean(
            torch.abs(ps - ts)
        )

    return l1_ssim
