"""CGNR: conjugate gradients on the Tikhonov-regularised normal equations.

    (A^T A + lam_abs I) c = A^T b,    A = [Re S; Im S],  b = [Re u; Im u]

every frame at once (one (N, N) product per iteration for all frames), the result clipped at 0.
``lam_abs`` = lam * ||S||_F^2 / N by default (``normalization`` "system-matrix"; "none": lam as
given; see :mod:`napari_mpi.recon.normalization`).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .normalization import Normalization, choices, weight_scale
from .operators import cached, real_rhs, real_stack
from .registry import Method, Param, check_inputs, register


def iter_cgnr(
    sm: SystemMatrix,
    measurements: np.ndarray,
    lam: float = 0.001,
    iterations: int = 20,
    enforce_positive: bool = True,
    normalization: str = "system-matrix",
) -> Generator[Progress, None, np.ndarray]:
    """Conjugate gradients on (A^T A + lam_abs I) c = A^T b; yields after every iteration,
    returns (frames, voxels) images."""
    u = check_inputs(sm, measurements)
    norm = Normalization(normalization).value

    def build():
        a = real_stack(sm.matrix)
        return a, a.T @ a, float(lam) * weight_scale(norm, np.sum(a**2), a.shape[1])

    a, ata, lam_abs = cached(sm, ("cgnr", float(lam), norm), build)
    rhs = a.T @ real_rhs(u)
    x = np.zeros_like(rhs)
    r = rhs.copy()
    p = r.copy()
    rr = np.sum(r * r, axis=0)
    yield Progress(0, iterations, "cgnr iterations")
    for it in range(iterations):
        q = ata @ p + lam_abs * p
        pq = np.sum(p * q, axis=0)
        alpha = np.where(pq > 0, rr / np.where(pq > 0, pq, 1.0), 0.0)
        x += alpha * p
        r -= alpha * q
        rr_new = np.sum(r * r, axis=0)
        beta = np.where(rr > 0, rr_new / np.where(rr > 0, rr, 1.0), 0.0)
        p = r + beta * p
        rr = rr_new
        yield Progress(it + 1, iterations, "cgnr iterations")
    return (np.maximum(x, 0.0) if enforce_positive else x).T


def cgnr(sm: SystemMatrix, measurements: np.ndarray, **params) -> np.ndarray:
    """CGNR without progress: (frames, voxels) images (see :func:`iter_cgnr`)."""
    from ..progress import run

    return run(iter_cgnr(sm, measurements, **params))


register(
    Method(
        name="cgnr",
        title="CGNR (Tikhonov)",
        description="Conjugate gradients on the regularised normal equations.",
        params=(
            Param("lam", float, 0.001, "Tikhonov weight", 0.0, normalization="normalization"),
            Param("iterations", int, 20, "CG iterations", 1, 100000),
            Param("enforce_positive", bool, True, "clip negative values at the end"),
            Param(
                "normalization",
                "choice",
                "system-matrix",
                "scaling of lam: system-matrix (lam ||S||_F^2 / N) or none",
                choices=choices(Normalization.SYSTEM_MATRIX, Normalization.NONE),
            ),
        ),
        solve=iter_cgnr,
        order=20,
    )
)
