"""Line profiles and their widths."""

from __future__ import annotations

import numpy as np


def fwhm(profile: np.ndarray, spacing: float = 1.0) -> float:
    """Full width at half maximum of a single-peaked profile, with linear interpolation.

    Parameters
    ----------
    profile : array, shape (n,)
        Samples of the profile (its baseline taken as 0).
    spacing : float
        Distance between samples (e.g. m); the result is in the same unit.

    Returns
    -------
    float
        The width; ``nan`` when the profile does not fall below half its maximum on both sides
        of the peak.
    """
    p = np.asarray(profile, dtype=np.float64)
    if p.ndim != 1 or p.size < 3:
        raise ValueError(f"profile must be 1-D with at least 3 samples, got shape {p.shape}")
    i = int(np.argmax(p))
    half = p[i] / 2
    if half <= 0:
        return float("nan")
    left = np.flatnonzero(p[:i] < half)
    right = np.flatnonzero(p[i:] < half)
    if left.size == 0 or right.size == 0:
        return float("nan")
    l0 = left[-1]
    r0 = i + right[0]
    xl = l0 + (half - p[l0]) / (p[l0 + 1] - p[l0])
    xr = r0 - 1 + (p[r0 - 1] - half) / (p[r0 - 1] - p[r0])
    return float((xr - xl) * spacing)
