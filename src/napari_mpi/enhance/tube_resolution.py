"""Two-tube resolution phantoms of the DC_GAN paper and whether an image resolves them.

The phantom (:func:`tube_pair`): two parallel tubes of ``diameter`` (1.2 mm) running along y,
with an edge-to-edge ``gap`` along x, centred in the 20 x 20 mm FOV of a 101 x 101 image.

The profile (:func:`tube_profile`) is the line through both tube centres (along x, at the
FOV's centre row), averaged over the ``rows`` rows around it (default 5, about 1 mm, to keep
one noisy pixel from deciding). :func:`dip_ratio` reads it as the Rayleigh-like criterion
stated here: P1, P2 = the profile's maxima within one tube diameter of each tube's centre,
V = the profile's minimum between the positions of P1 and P2, dip = V / min(P1, P2). The tubes
are *resolved* when dip <= :data:`RAYLEIGH_DIP` (0.81, the dip of two just-resolved sinc^2
spots: 8 / pi^2); one blurred hump gives dip near 1. Numpy only.
"""

from __future__ import annotations

import numpy as np

from ..grid import Grid
from ..simulation.phantoms import two_tubes
from .unpaired import image_grid

__all__ = ["GAPS_MM", "RAYLEIGH_DIP", "dip_ratio", "tube_centres", "tube_pair", "tube_profile"]

#: the DC_GAN paper's gaps (mm, edge to edge), its Table 1
GAPS_MM = (1.0, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4)
#: largest dip (valley / smaller peak) that counts as resolved: 8 / pi^2
RAYLEIGH_DIP = 8 / np.pi**2
TUBE_DIAMETER = 1.2e-3


def tube_pair(gap: float, diameter: float = TUBE_DIAMETER, grid: Grid | None = None) -> np.ndarray:
    """The two-tube phantom (ny, nx), max 1 (partial-volume rasterised), gap and diameter in m."""
    grid = grid or image_grid()
    return two_tubes(grid, gap, diameter, axis="x").data[0, 0].astype(np.float32)


def tube_centres(gap: float, diameter: float = TUBE_DIAMETER, grid: Grid | None = None):
    """x positions (pixels, fractional) of the two tube centres on the grid."""
    grid = grid or image_grid()
    nx = grid.shape[2]
    pixel = float(grid.voxel_size[2])
    middle = (nx - 1) / 2
    offset = (gap + diameter) / 2 / pixel
    return middle - offset, middle + offset


def tube_profile(image: np.ndarray, rows: int = 5) -> np.ndarray:
    """The mean of the ``rows`` rows around the centre row of a (ny, nx) image (along x)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"tube_profile: expects a 2D image (ny, nx), got {a.shape}")
    c = a.shape[0] // 2
    half = max(0, int(rows) // 2)
    return a[max(0, c - half) : c + half + 1].mean(axis=0)


def dip_ratio(
    profile: np.ndarray,
    gap: float,
    diameter: float = TUBE_DIAMETER,
    grid: Grid | None = None,
) -> dict[str, float | bool]:
    """``{"dip", "resolved", "peak_left_px", "peak_right_px"}`` of a profile across the tubes
    (module docstring). dip is nan when a peak is not positive, and 1 (one hump, no valley)
    when both tubes' windows find their maximum at the same pixel."""
    p = np.asarray(profile, dtype=np.float64)
    grid = grid or image_grid()
    left, right = tube_centres(gap, diameter, grid)
    reach = diameter / float(grid.voxel_size[2])
    x = np.arange(p.size)

    def peak(centre: float) -> int:
        window = np.flatnonzero(np.abs(x - centre) <= reach)
        return int(window[np.argmax(p[window])])

    i, j = peak(left), peak(right)
    low = min(p[i], p[j])
    if not low > 0:
        return {"dip": float("nan"), "resolved": False, "peak_left_px": i, "peak_right_px": j}
    if j <= i:  # one maximum in the windows' overlap: a single hump, nothing between peaks
        return {"dip": 1.0, "resolved": False, "peak_left_px": i, "peak_right_px": j}
    dip = float(p[i : j + 1].min() / low)
    return {"dip": dip, "resolved": bool(dip <= RAYLEIGH_DIP), "peak_left_px": i,
            "peak_right_px": j}  # fmt: skip
