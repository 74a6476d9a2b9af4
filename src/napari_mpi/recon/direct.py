"""CGNR and the regularised pseudo-inverse (Tikhonov or truncated SVD)."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .operators import cached, real_rhs, real_stack, relative_lambda
from .registry import Method, Param, check_inputs, register


def iter_cgnr(
    sm: SystemMatrix,
    measurements: np.ndarray,
    lam: float = 0.001,
    iterations: int = 20,
    enforce_positive: bool = True,
) -> Generator[Progress, None, np.ndarray]:
    """Conjugate gradients on (A^T A + lam_abs I) c = A^T b, every frame at once."""
    u = check_inputs(sm, measurements)

    def build():
        a = real_stack(sm.matrix)
        return a, a.T @ a, relative_lambda(np.sum(a**2), a.shape[1], lam)

    a, ata, lam_abs = cached(sm, ("cgnr", float(lam)), build)
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


def reconstruction_matrix(sm: SystemMatrix, mode: str, lam: float, cutoff: float) -> np.ndarray:
    """The (N, 2M) matrix R with c = R [Re u; Im u], cached per matrix and parameters.

    Tikhonov: R = (A^T A + lam_abs I)^-1 A^T via a Cholesky solve (no SVD needed, so a 3D
    matrix takes seconds); tsvd: R = V diag(1/s, s >= cutoff s_max) U^T from a full SVD.
    """

    def build():
        a = real_stack(sm.matrix)
        if mode == "tsvd":
            u_, s, vt = np.linalg.svd(a, full_matrices=False)
            keep = s >= cutoff * s[0]
            filt = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
            return ((vt.T * filt) @ u_.T).astype(np.float32)
        ata = a.T @ a
        lam_abs = relative_lambda(np.trace(ata), a.shape[1], lam)
        ata[np.diag_indices_from(ata)] += lam_abs
        if lam_abs > 0:
            factor = cho_factor(ata, lower=True, check_finite=False)
            return cho_solve(factor, a.T, check_finite=False).astype(np.float32)
        return np.linalg.pinv(a).astype(np.float32)

    return cached(sm, ("pinv", mode, float(lam), float(cutoff)), build)


def iter_pinv(
    sm: SystemMatrix,
    measurements: np.ndarray,
    mode: str = "tikhonov",
    lam: float = 0.001,
    cutoff: float = 0.01,
    enforce_positive: bool = True,
) -> Generator[Progress, None, np.ndarray]:
    """Direct solve with a precomputed regularised pseudo-inverse (one product per frame)."""
    u = check_inputs(sm, measurements)
    yield Progress(0, 1, "pseudo-inverse")
    r = reconstruction_matrix(sm, mode, lam, cutoff)
    x = r @ real_rhs(u, np.float32)
    yield Progress(1, 1, "pseudo-inverse")
    return (np.maximum(x, 0.0) if enforce_positive else x).T


register(
    Method(
        name="cgnr",
        title="CGNR (Tikhonov)",
        description="Conjugate gradients on the regularised normal equations.",
        params=(
            Param("lam", float, 0.001, "Tikhonov weight, relative to ||S||_F^2 / N", 0.0),
            Param("iterations", int, 20, "CG iterations", 1, 100000),
            Param("enforce_positive", bool, True, "clip negative values at the end"),
        ),
        solve=iter_cgnr,
        order=20,
    )
)

register(
    Method(
        name="pinv",
        title="Regularised pseudo-inverse",
        description="Tikhonov-filtered or truncated SVD, precomputed once per matrix; "
        "reconstructing a frame is one matrix-vector product.",
        params=(
            Param("mode", "choice", "tikhonov", "filter", choices=("tikhonov", "tsvd")),
            Param("lam", float, 0.001, "Tikhonov weight, relative to ||S||_F^2 / N", 0.0),
            Param(
                "cutoff", float, 0.01, "tsvd: keep singular values >= cutoff * largest", 0.0, 1.0
            ),
            Param("enforce_positive", bool, True, "clip negative values"),
        ),
        solve=iter_pinv,
        order=30,
    )
)
