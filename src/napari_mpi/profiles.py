"""Line profiles: the width (FWHM) of every peak, the peak-to-valley ratio, and clipping a
line to the field of view. No napari here: the Metrics widget and scripts share it."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Peak:
    """One peak of a profile.

    Attributes
    ----------
    index : int
        Sample index of the maximum.
    position : float
        Its distance along the profile (unit of ``spacing``).
    height : float
        The profile's value there (baseline 0).
    fwhm : float
        Full width at half of ``height`` (unit of ``spacing``), linearly interpolated; ``nan``
        when the profile does not fall below half the height on both sides before reaching the
        profile's end or another peak (the peak is not resolved at half maximum).
    """

    index: int
    position: float
    height: float
    fwhm: float


def _prominence(p: np.ndarray, i: int) -> float:
    """Height of peak ``i`` above its base: the lowest point on the way to a higher sample.

    A side that reaches the profile's end without a higher sample does not limit the base
    (a line ending on a peak's flank does not hide it); the highest peak uses its lower side.
    Peaks of equal height up to rounding (1e-9 of the maximum) are both the highest: which of
    two mirror-image peaks comes out a last bit lower must not decide whether it is found.
    """
    bases = []
    ends = []
    tol = 1e-9 * float(np.abs(p).max())
    for side in (p[: i + 1][::-1], p[i:]):
        higher = np.flatnonzero(side > p[i] + tol)
        (bases if higher.size else ends).append(
            side[: higher[0]].min() if higher.size else side.min()
        )
    base = max(bases) if bases else min(ends)
    return float(p[i] - base)


def _half_crossing(p: np.ndarray, i: int, step: int, stops: set[int]) -> float | None:
    """Fractional index where the profile first falls below p[i]/2 going ``step`` from ``i``."""
    half = p[i] / 2
    j = i
    while 0 <= j + step < p.size:
        k = j + step
        if p[k] < half:
            return j + step * (p[j] - half) / (p[j] - p[k])
        if k in stops or p[k] > p[i]:
            return None
        j = k
    return None


def find_peaks(
    profile: np.ndarray,
    spacing: float = 1.0,
    min_height: float = 0.1,
    min_prominence: float = 0.1,
) -> list[Peak]:
    """The peaks of a profile with the FWHM of each.

    Parameters
    ----------
    profile : array, shape (n,)
        Samples (baseline 0), e.g. values along a line through an image.
    spacing : float
        Distance between samples (e.g. mm); positions and widths are in this unit.
    min_height, min_prominence : float
        A local maximum counts as a peak when its height and its prominence (height above the
        higher of its two bases) are at least these fractions of the profile's maximum.

    Returns
    -------
    list of Peak
        From the start of the profile to its end; empty when the profile has no positive value.
    """
    p = np.asarray(profile, dtype=np.float64)
    if p.ndim != 1 or p.size < 3:
        raise ValueError(f"profile must be 1-D with at least 3 samples, got shape {p.shape}")
    p = np.nan_to_num(p, nan=0.0)
    top = p.max()
    if top <= 0:
        return []
    candidates = []
    for i in range(p.size):
        left = p[i - 1] if i > 0 else -np.inf
        right = p[i + 1] if i + 1 < p.size else -np.inf
        if p[i] > left and p[i] >= right and p[i] >= min_height * top:
            if _prominence(p, i) >= min_prominence * top:
                candidates.append(i)
    stops = set(candidates)
    peaks = []
    for i in candidates:
        lo = _half_crossing(p, i, -1, stops - {i})
        hi = _half_crossing(p, i, +1, stops - {i})
        width = float("nan") if lo is None or hi is None else (hi - lo) * spacing
        peaks.append(Peak(index=i, position=i * spacing, height=float(p[i]), fwhm=width))
    return peaks


def peak_to_valley(profile: np.ndarray, peaks: list[Peak] | None = None) -> float:
    """Ratio of the smaller of the two highest peaks to the lowest value between them.

    ``inf`` when the valley reaches 0 (fully separated), ``nan`` with fewer than two peaks;
    1 would mean no dip at all. ``peaks`` defaults to :func:`find_peaks` of the profile.
    """
    p = np.nan_to_num(np.asarray(profile, dtype=np.float64), nan=0.0)
    peaks = find_peaks(p) if peaks is None else peaks
    if len(peaks) < 2:
        return float("nan")
    a, b = sorted(sorted(peaks, key=lambda pk: pk.height)[-2:], key=lambda pk: pk.index)
    valley = p[a.index : b.index + 1].min()
    smaller = min(a.height, b.height)
    return float("inf") if valley <= 0 else float(smaller / valley)


def clip_segment(
    start: np.ndarray, end: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[float, float] | None:
    """The part of the segment start -> end inside the box [lower, upper] (any dimension).

    Returns the fractions ``(t0, t1)`` of the segment (0 = start, 1 = end) that lie inside,
    or None when the segment misses the box.
    """
    p0, p1 = np.asarray(start, np.float64), np.asarray(end, np.float64)
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    t0, t1 = 0.0, 1.0
    for d in range(p0.size):
        delta = p1[d] - p0[d]
        if delta == 0:
            if p0[d] < lo[d] or p0[d] > hi[d]:
                return None
            continue
        a, b = (lo[d] - p0[d]) / delta, (hi[d] - p0[d]) / delta
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
        if t0 > t1:
            return None
    return t0, t1
