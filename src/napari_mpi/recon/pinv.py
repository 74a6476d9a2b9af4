"""The regularised pseudo-inverse: Tikhonov-filtered or truncated SVD, precomputed once.

Tikhonov: R = (A^T A + lam_abs I)^-1 A^T (Cholesky), lam_abs = lam * ||S||_F^2 / N by default
(``normalization`` "system-matrix"; "none": lam as given); tsvd: R = V diag(1/s, s >= cutoff
s_max) U^T. Reconstructing a frame is one product c = R [Re u; Im u].
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .normalization import Normalization, choices, weight_scale
from .operators import cached, real_rhs, real_stack
from .registry import Method, Param, check_inputs, register


def reconstruction_matrix(
    sm: SystemMatrix,
    mode: str,
    lam: float,
    cutoff: float,
    normalization: str = "system-matrix",
) -> np.ndarray:
    """The (N, 2M) matrix R with c = R [Re u; Im u], cached per matrix and parameters.

    Tikhonov: R = (A^T A + lam_abs I)^-1 A^T via a Cholesky solve (no SVD needed, so a 3D
    matrix takes seconds); tsvd: R = V diag(1/s, s >= cutoff s_max) U^T from a full SVD.
    """
    norm = Normalization(normalization).value

    def build():
        a = real_stack(sm.matrix)
        if mode == "tsvd":
            u_, s, vt = np.linalg.svd(a, full_matrices=False)
            keep = s >= cutoff * s[0]
            filt = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
            return ((vt.T * filt) @ u_.T).astype(np.float32)
        ata = a.T @ a
        lam_abs = float(lam) * weight_scale(norm, np.trace(ata), a.shape[1])
        ata[np.diag_indices_from(ata)] += lam_abs
        if lam_abs > 0:
            factor = cho_factor(ata, lower=True, check_finite=False)
            return cho_solve(factor, a.T, check_finite=False).astype(np.float32)
        return np.linalg.pinv(a).astype(np.float32)

    return cached(sm, ("pinv", mode, float(lam), float(cutoff), norm), build)


def iter_pinv(
    sm: SystemMatrix,
    measurements: np.ndarray,
    mode: str = "tikhonov",
    lam: float = 0.01,
    cutoff: float = 0.01,
    enforce_positive: bool = True,
    normalization: str = "system-matrix",
) -> Generator[Progress, None, np.ndarray]:
    """Direct solve with a precomputed regularised pseudo-inverse (one product per frame)."""
    u = check_inputs(sm, measurements)
    yield Progress(0, 1, "pseudo-inverse")
    r = reconstruction_matrix(sm, mode, lam, cutoff, normalization)
    x = r @ real_rhs(u, np.float32)
    yield Progress(1, 1, "pseudo-inverse")
    return (np.maximum(x, 0.0) if enforce_positive else x).T


def pinv(sm: SystemMatrix, measurements: np.ndarray, **params) -> np.ndarray:
    """The pseudo-inverse reconstruction without progress: (frames, voxels) images."""
    from ..progress import run

    return run(iter_pinv(sm, measurements, **params))


register(
    Method(
        name="pinv",
        title="Regularised pseudo-inverse",
        description="Tikhonov-filtered or truncated SVD, precomputed once per matrix; "
        "reconstructing a frame is one matrix-vector product.",
        params=(
            Param("mode", "choice", "tikhonov", "filter", choices=("tikhonov", "tsvd")),
            Param(
                "lam",
                float,
                0.01,
                "Tikhonov weight (mode tikhonov)",
                0.0,
                normalization="normalization",
            ),
            Param(
                "cutoff", float, 0.01, "tsvd: keep singular values >= cutoff * largest", 0.0, 1.0
            ),
            Param("enforce_positive", bool, True, "clip negative values"),
            Param(
                "normalization",
                "choice",
                "system-matrix",
                "scaling of lam: system-matrix (lam ||S||_F^2 / N) or none",
                choices=choices(Normalization.SYSTEM_MATRIX, Normalization.NONE),
            ),
        ),
        solve=iter_pinv,
        order=30,
    )
)
