"""Named normalisations of regularisation weights.

A regularisation weight ``lam`` given by the user is a number relative to a scale of the
problem, so that one value works across scanners and grids. Which scale is a named
:class:`Normalization` (after the normalisation types of RegularizedLeastSquares.jl), chosen
per method by its ``normalization`` parameter, and shown in every help text:

``"system-matrix"``
    lam_abs = lam * ||A||_F^2 / N: the mean energy of a column of the system matrix A (N voxels).
    The default of Kaczmarz, CGNR and the pseudo-inverse (for Kaczmarz, of the row-weighted
    matrix it sweeps), and the fixed scaling of the ADMM and PP-MPI penalties ``rho``.
``"measurement"``
    lam_abs = lam * max|A^T b| per frame (b the measurement): lam = 1 gives the all-zero image
    of an L1 problem. The default of ADMM.
``"none"``
    lam_abs = lam: the weight as given, in the units of the problem.

With A = [Re S; Im S] the real-stacked system matrix, ||A||_F = ||S||_F.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np


class Normalization(StrEnum):
    """How a regularisation weight is scaled (the values are the parameter's strings)."""

    SYSTEM_MATRIX = "system-matrix"
    MEASUREMENT = "measurement"
    NONE = "none"


_DESCRIPTIONS = {
    Normalization.SYSTEM_MATRIX: "relative to ||S||_F^2 / N",
    Normalization.MEASUREMENT: "relative to max|A^T b| per frame",
    Normalization.NONE: "absolute (not normalised)",
}


def describe(normalization: str | Normalization) -> str:
    """A few words for help texts, e.g. ``"relative to ||S||_F^2 / N"``."""
    return _DESCRIPTIONS[Normalization(normalization)]


def choices(*allowed: Normalization) -> tuple[str, ...]:
    """The parameter choices for the given normalisations (their strings)."""
    return tuple(n.value for n in allowed)


def weight_scale(
    normalization: str | Normalization,
    frobenius2: float | None = None,
    num_voxels: int | None = None,
    atb: np.ndarray | None = None,
) -> float | np.ndarray:
    """The factor lam_abs / lam of a normalisation.

    Parameters
    ----------
    normalization : str or Normalization
    frobenius2 : float
        ||A||_F^2 (for "system-matrix").
    num_voxels : int
        N, the number of columns of A (for "system-matrix").
    atb : ndarray, shape (N, frames)
        A^T b (for "measurement"); the factor is then an array of shape (1, frames).

    Returns
    -------
    float or ndarray
    """
    norm = Normalization(normalization)
    if norm is Normalization.NONE:
        return 1.0
    if norm is Normalization.SYSTEM_MATRIX:
        if frobenius2 is None or not num_voxels:
            raise ValueError("system-matrix normalisation needs ||A||_F^2 and the voxel count")
        return float(frobenius2) / int(num_voxels)
    if atb is None:
        raise ValueError("measurement normalisation needs A^T b")
    return np.max(np.abs(atb), axis=0, keepdims=True)
