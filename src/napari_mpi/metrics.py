"""Image-quality metrics and profiles, as defined in the DERnet paper (eqs 12-14).

Every comparison first brings the reference onto the image's grid in physical coordinates
(area averaging, :func:`napari_mpi.resample.resample`), never by matching indices.
"""

from __future__ import annotations

import numpy as np

from .grid import Grid
from .image import MPIImage
from .profiles import fwhm
from .resample import resample

__all__ = [
    "compare",
    "fwhm",
    "line_profile",
    "nrmse",
    "psnr",
    "resolvability",
    "rmse",
    "ssim",
]


def _pair(image, reference) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of the same shape: MPIImages are resampled onto the image's grid."""
    if isinstance(image, MPIImage) and isinstance(reference, MPIImage):
        ref = reference if reference.grid.same_as(image.grid) else resample(reference, image.grid)
        img, ref_data = image.data, ref.data
        if ref_data.shape[0] == 1 and img.shape[0] > 1:
            ref_data = np.broadcast_to(ref_data, img.shape)
        if img.shape[0] == 1 and ref_data.shape[0] > 1:
            raise ValueError("reference has several frames but the image has one")
        return np.asarray(img, np.float64), np.asarray(ref_data, np.float64)
    a = np.asarray(image.data if isinstance(image, MPIImage) else image, np.float64)
    b = np.asarray(reference.data if isinstance(reference, MPIImage) else reference, np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"image {a.shape} and reference {b.shape} differ in shape; pass MPIImages to "
            "resample the reference in physical coordinates"
        )
    return a, b


def rmse(image, reference) -> float:
    """Root-mean-square error."""
    a, b = _pair(image, reference)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def nrmse(image, reference) -> float:
    """||I_pd - I_gt||_F / ||I_gt||_F (DERnet eq. 12)."""
    a, b = _pair(image, reference)
    denom = np.linalg.norm(b)
    if denom == 0:
        raise ValueError("nrmse: the reference is all zero")
    return float(np.linalg.norm(a - b) / denom)


def psnr(image, reference) -> float:
    """10 log10(max(I_gt)^2 / MSE) in dB, peak = maximum of the reference (DERnet eq. 13)."""
    a, b = _pair(image, reference)
    mse = np.mean((a - b) ** 2)
    peak = b.max()
    if peak <= 0:
        raise ValueError("psnr: the reference maximum must be positive")
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def ssim(image, reference) -> float:
    """Structural similarity (DERnet eq. 14) via scikit-image, data range of the reference.

    scikit-image's definition with its defaults: uniform 7^d window (the largest odd size that
    fits for small images), sample covariances, K1 = 0.01, K2 = 0.03, data range max - min of
    the reference. The training loss :func:`napari_mpi.nn.losses.ssim` is the same definition
    in torch (pinned within 1e-3 by a test), so a loss on SSIM optimises what is reported.

    Images with a size-1 axis are compared over their remaining axes; several frames are
    averaged.
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(image, reference)
    data_range = float(b.max() - b.min()) or 1.0
    if a.ndim == 4:  # (frames, z, y, x)
        return float(np.mean([ssim(fa, fb) for fa, fb in zip(a, b, strict=True)]))
    a2, b2 = np.squeeze(a), np.squeeze(b)
    if a2.ndim < 2:
        raise ValueError("ssim needs at least a 2D image")
    win = min(7, *[s if s % 2 else s - 1 for s in a2.shape])
    if win < 3:
        raise ValueError(f"ssim: image {a2.shape} is too small (needs 3 voxels per axis)")
    return float(structural_similarity(a2, b2, data_range=data_range, win_size=win))


def compare(image, reference) -> dict[str, float]:
    """PSNR (dB), SSIM, NRMSE and RMSE of ``image`` against ``reference``."""
    return {
        "psnr": psnr(image, reference),
        "ssim": ssim(image, reference),
        "nrmse": nrmse(image, reference),
        "rmse": rmse(image, reference),
    }


def line_profile(
    image: MPIImage,
    start: tuple[float, ...],
    end: tuple[float, ...],
    num: int | None = None,
    frame: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Values along a straight line between two points given in metres, (z, y, x) or (y, x).

    Returns ``(distance, values)``: distance from ``start`` (m) and linearly interpolated
    values; ``num`` defaults to 4 samples per voxel along the line.
    """
    from scipy.ndimage import map_coordinates

    grid: Grid = image.grid
    p0 = np.asarray(start, np.float64)
    p1 = np.asarray(end, np.float64)
    if p0.shape != p1.shape or p0.size not in (2, 3):
        raise ValueError("start and end must both be (z, y, x) or (y, x) points (m)")
    if p0.size == 2:
        p0 = np.concatenate([[grid.center[0]], p0])
        p1 = np.concatenate([[grid.center[0]], p1])
    length = float(np.linalg.norm(p1 - p0))
    if num is None:
        num = max(2, int(np.ceil(4 * length / grid.voxel_size.min())) + 1)
    t = np.linspace(0, 1, num)
    pts = p0[:, None] + (p1 - p0)[:, None] * t
    idx = (pts - grid.origin[:, None]) / grid.voxel_size[:, None]
    idx[grid.fov == 0] = 0
    values = map_coordinates(image.data[frame].astype(np.float64), idx, order=1, mode="nearest")
    return t * length, values


def resolvability(profile: np.ndarray) -> float:
    """How well two peaks are separated: 1 - dip / smaller peak (0: merged, 1: zero dip).

    The two peaks are the largest local maxima on either side of the deepest dip between them.
    """
    p = np.asarray(profile, np.float64)
    peaks = [i for i in range(1, p.size - 1) if p[i] >= p[i - 1] and p[i] > p[i + 1]]
    if len(peaks) < 2:
        return 0.0
    best = 0.0
    top = sorted(peaks, key=lambda i: p[i], reverse=True)[:4]
    for i in top:
        for j in top:
            if j <= i:
                continue
            dip = p[i : j + 1].min()
            smaller = min(p[i], p[j])
            if smaller > 0:
                best = max(best, 1 - dip / smaller)
    return float(best)
