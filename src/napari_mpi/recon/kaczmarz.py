"""ART: row-energy normalised Kaczmarz with Tikhonov regularisation (auxiliary variables).

Textbook MPI Kaczmarz (Knopp et al. 2010) sweeps the rows k of the extended system
[S, sqrt(lambda) I] [c; v] = u:

    tau   = (u_k - s_k c - sqrt(lambda) v_k) / (||s_k||^2 + lambda)
    c    += tau * conj(s_k)
    v_k  += sqrt(lambda) * tau

and projects c onto real, non-negative values after each sweep. Within one sweep, row k sees
the updates of rows j < k, so the step sizes of a sweep solve the lower-triangular system

    (D + L) tau = u - S c - sqrt(lambda) v,     D + L = lower triangle of S S^H + lambda I,

and c += S^H tau, v += sqrt(lambda) tau give *exactly* the iterate of the row-by-row loop. This
module computes sweeps that way: one triangular solve (BLAS, all frames at once) and two
matrix products per sweep, with the Gram matrix computed once per system matrix and cached.

Many frames at once (real images, the default): between projections the sweeps are linear, so
the image after sweep k, before its projection, is

    c_k = Re(P_k u) + sum_{j<k} R_kj c'_j          (c'_j: the projected image after sweep j)

with (N, M) matrices P_k and (N, N) matrices R_kj that depend only on the system matrix, lambda
and the number of sweeps. :class:`KaczmarzMaps` computes them once by running the sweeps on
unit vectors (the cost of about M frames; done when at least M / 2 frames come at once, and
cached with the system matrix); after that a frame costs one real (N, 2M) product per sweep
(plus small (N, N) ones) instead of a triangular solve and two complex products, about 6x
fewer operations for the 2D preset. The result is the same iterate up to rounding.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from scipy.linalg import solve_triangular

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .normalization import Normalization, choices, weight_scale
from .operators import cached, has_cached, real_rhs, real_stack
from .registry import Method, Param, check_inputs, register


class KaczmarzOperator:
    """Precomputed pieces of Kaczmarz for one system matrix, weighting and row order.

    Rows without energy carry no information and are skipped.
    """

    def __init__(
        self,
        sm: SystemMatrix,
        lam: float,
        row_weighting: bool,
        shuffle: bool,
        seed: int,
        normalization: str = Normalization.SYSTEM_MATRIX,
    ) -> None:
        s = sm.matrix  # complex64: sweeps run in single precision (BLAS c-routines)
        energy = np.sum(np.abs(s.astype(np.complex128)) ** 2, axis=1)
        rows = np.flatnonzero(energy > 0)
        if shuffle:
            rows = rows[np.random.default_rng(seed).permutation(rows.size)]
        self.rows = rows
        self.weights = 1.0 / np.sqrt(energy[rows]) if row_weighting else np.ones(rows.size)
        a = s[rows].astype(np.complex128) * self.weights[:, None]
        self.lam = float(lam) * weight_scale(normalization, np.sum(np.abs(a) ** 2), a.shape[1])
        gram = a @ a.conj().T  # accumulated in double precision, stored in single
        gram[np.diag_indices_from(gram)] += self.lam
        self.lower = np.tril(gram).astype(np.complex64)
        self.a = a.astype(np.complex64)
        self.ah = np.ascontiguousarray(self.a.conj().T)

    def rhs(self, u: np.ndarray) -> np.ndarray:
        """Weighted, reordered measurements as columns (rows, frames)."""
        return (u[:, self.rows] * self.weights).T


#: precomputed per-sweep maps are used up to this many bytes (all sweeps together)
MAPS_MAX_BYTES = 256 * 2**20


class KaczmarzMaps:
    """The per-sweep linear maps P_k (real-stacked, (N, 2M)) and R_kj ((N, N)) of ``sweeps``
    Kaczmarz sweeps with real projections in between (see the module docstring)."""

    def __init__(self, op: KaczmarzOperator, sweeps: int) -> None:
        m, n = op.a.shape
        # response to the measurements, every projected image held at zero
        p = self._probe(op, np.eye(m, dtype=np.complex64), None, sweeps)
        self.p = [np.ascontiguousarray(np.concatenate([x.real, -x.imag], axis=1)) for x in p]
        # response to the projected image after sweep j (1-based), from sweep j + 1 on
        self.r = [[None] * sweeps for _ in range(sweeps)]
        for j in range(1, sweeps):
            for i, x in enumerate(self._probe(op, None, np.eye(n, dtype=np.complex64), sweeps - j)):
                self.r[j + i][j - 1] = np.ascontiguousarray(x.real)

    @staticmethod
    def _probe(op, b, c, sweeps: int) -> list[np.ndarray]:
        """Unprojected images after each of ``sweeps`` linear sweeps from image ``c`` (or 0)
        and v = 0 with right-hand side ``b`` (or 0); later sweeps start from image 0."""
        m = op.a.shape[0]
        columns = b.shape[1] if b is not None else c.shape[1]
        v = np.zeros((m, columns), dtype=np.complex64)
        root = np.float32(np.sqrt(op.lam))
        out = []
        for _ in range(sweeps):
            residual = -root * v
            if b is not None:
                residual += b
            if c is not None:
                residual -= op.a @ c
            tau = solve_triangular(op.lower, residual, lower=True, check_finite=False)
            image = op.ah @ tau
            if c is not None:
                image += c
            out.append(image)
            v += root * tau
            c = None
        return out

    @staticmethod
    def nbytes(op: KaczmarzOperator, sweeps: int) -> int:
        m, n = op.a.shape
        return 4 * sweeps * (2 * n * m + sweeps * n * n // 2) + 3 * 8 * m * m


#: candidate relative lambdas of ``lam="auto"`` (GCV), 4 per decade
AUTO_LAMBDAS = tuple(float(v) for v in np.logspace(-5, -1, 17))
#: ``lam="auto"`` falls back to this relative lambda for matrices with more voxels than
#: :data:`AUTO_MAX_VOXELS` (their SVD would take minutes)
AUTO_FALLBACK = 1e-3
AUTO_MAX_VOXELS = 2500
#: ``lam="auto"`` uses GCV's lambda divided by this. GCV scores the unconstrained linear
#: Tikhonov solution; Kaczmarz projects onto real, non-negative images after every sweep, which
#: regularises too, so its best lambda is lower. Chosen by measurement
#: (``benchmarks/bench_defaults.py``, docs/reconstruction.md): with 200 sweeps, divisors 1 / 3 / 10
#: gave 17.88 / 17.90 / 17.35 dB on example-2d, 32.99 / 37.38 / 40.06 dB on two points and
#: 28.02 / 26.62 / 22.62 dB on 20 digits; 3 is the one within 3 dB of the tuned result on all.
AUTO_DIVISOR = 3.0
#: default number of sweeps (more sweeps never hurt on the measured cases; see AUTO_DIVISOR)
DEFAULT_SWEEPS = 200


def gcv_lambda(sm: SystemMatrix, u: np.ndarray, row_weighting: bool = False) -> float:
    """Relative Tikhonov lambda (``normalization`` "system-matrix") chosen by generalised
    cross-validation, among :data:`AUTO_LAMBDAS`.

    For the (row-weighted) real-stacked system A = U diag(s) V^T and each frame b,
    GCV(lam) = ||(I - A R_lam) b||^2 / trace(I - A R_lam)^2 with R_lam the Tikhonov inverse at
    lam_abs = lam ||A||_F^2 / N; the frames' choices are combined by their geometric mean and
    rounded to the grid. The SVD is cached with ``sm``. Matrices with more than
    :data:`AUTO_MAX_VOXELS` voxels get :data:`AUTO_FALLBACK`.

    Parameters
    ----------
    sm : SystemMatrix
    u : ndarray, shape (frames, rows)
        Measurements aligned with ``sm``.
    row_weighting : bool
        Weight rows to unit energy first (as Kaczmarz does with ``row_weighting``).
    """
    if sm.num_voxels > AUTO_MAX_VOXELS:
        return AUTO_FALLBACK

    def build():
        s = sm.matrix.astype(np.complex128)
        energy = np.sum(np.abs(s) ** 2, axis=1)
        rows = np.flatnonzero(energy > 0)
        w = 1.0 / np.sqrt(energy[rows]) if row_weighting else np.ones(rows.size)
        a = real_stack(s[rows] * w[:, None])
        left, sv, _ = np.linalg.svd(a, full_matrices=False)
        return rows, w, left, sv, float(np.sum(sv**2)) / a.shape[1]

    rows, w, left, sv, scale = cached(sm, ("kaczmarz-gcv", bool(row_weighting)), build)
    b = real_rhs(np.asarray(u)[:, rows] * w)  # (2M, F)
    beta = left.T @ b
    rest = np.maximum(np.sum(b * b, axis=0) - np.sum(beta * beta, axis=0), 0.0)
    lams = np.asarray(AUTO_LAMBDAS)
    filt = sv[None, :] ** 2 / (sv[None, :] ** 2 + lams[:, None] * scale)  # (L, N)
    residual = np.einsum("ln,nf->lf", (1 - filt) ** 2, beta**2) + rest  # (L, F)
    dof = b.shape[0] - filt.sum(axis=1)
    picks = lams[np.argmin(residual / dof[:, None] ** 2, axis=0)]
    mean = np.exp(np.mean(np.log(picks)))
    return float(lams[np.argmin(np.abs(np.log(lams) - np.log(mean)))])


def iter_kaczmarz(
    sm: SystemMatrix,
    measurements: np.ndarray,
    lam: float | str = "auto",
    sweeps: int = DEFAULT_SWEEPS,
    row_weighting: bool = False,
    shuffle: bool = False,
    seed: int = 0,
    enforce_real: bool = True,
    enforce_positive: bool = True,
    normalization: str = "system-matrix",
) -> Generator[Progress, None, np.ndarray]:
    """Kaczmarz / ART; yields after each sweep, returns (frames, voxels) images.

    ``lam`` is scaled by ``normalization`` ("system-matrix": lam ||A||_F^2 / N of the swept,
    row-weighted matrix A; "none": as given); see :mod:`napari_mpi.recon.normalization`.
    ``lam="auto"`` (the default) picks a relative lambda by generalised cross-validation on
    these measurements (:func:`gcv_lambda`), one for all frames, divided by
    :data:`AUTO_DIVISOR` (the non-negativity projection regularises too; matrices with more than
    :data:`AUTO_MAX_VOXELS` voxels get :data:`AUTO_FALLBACK`); the progress messages name it.
    """
    u = check_inputs(sm, measurements)
    norm = Normalization(normalization).value
    chosen = ""
    if lam == "auto":  # GCV on these measurements; a relative lambda
        norm = Normalization.SYSTEM_MATRIX.value
        if sm.num_voxels > AUTO_MAX_VOXELS:
            lam = AUTO_FALLBACK
            chosen = f" (lam {lam:.2g}: fixed above {AUTO_MAX_VOXELS} voxels)"
        else:
            lam = gcv_lambda(sm, u, row_weighting) / AUTO_DIVISOR
            chosen = f" (lam {lam:.2g}: GCV / {AUTO_DIVISOR:g})"
    key = ("kaczmarz", float(lam), bool(row_weighting), bool(shuffle), int(seed), norm)
    op = cached(sm, key, lambda: KaczmarzOperator(sm, lam, row_weighting, shuffle, seed, norm))
    if op.rows.size == 0:
        raise ValueError("kaczmarz: every row of the system matrix is zero")
    b = op.rhs(u).astype(np.complex64)
    maps_key = (*key, "maps", int(sweeps))
    if (
        enforce_real
        and KaczmarzMaps.nbytes(op, sweeps) <= MAPS_MAX_BYTES
        and (2 * b.shape[1] >= op.rows.size or has_cached(sm, maps_key))
    ):
        maps = cached(sm, maps_key, lambda: KaczmarzMaps(op, sweeps))
        return (yield from _iter_with_maps(maps, b, sweeps, enforce_positive, chosen))
    c = np.zeros((op.a.shape[1], b.shape[1]), dtype=np.complex64)
    v = np.zeros_like(b)
    root = np.float32(np.sqrt(op.lam))
    yield Progress(0, sweeps, f"kaczmarz sweeps{chosen}")
    for sweep in range(sweeps):
        residual = b - op.a @ c - root * v
        tau = solve_triangular(op.lower, residual, lower=True, check_finite=False)
        c += op.ah @ tau
        v += root * tau
        if enforce_real:
            c.imag = 0
        if enforce_positive:
            np.maximum(c.real, 0, out=c.real)
        yield Progress(sweep + 1, sweeps, f"kaczmarz sweeps{chosen}")
    return c.real.T


def _iter_with_maps(
    maps: KaczmarzMaps, b: np.ndarray, sweeps: int, enforce_positive: bool, chosen: str = ""
) -> Generator[Progress, None, np.ndarray]:
    """Sweeps through the precomputed maps: c_k = P_k [Re b; Im b] + sum_j R_kj c'_j."""
    stacked = np.concatenate([b.real, b.imag])
    images: list[np.ndarray] = []
    yield Progress(0, sweeps, f"kaczmarz sweeps{chosen}")
    for k in range(sweeps):
        c = maps.p[k] @ stacked
        for j in range(k):
            c += maps.r[k][j] @ images[j]
        if enforce_positive:
            np.maximum(c, 0, out=c)
        images.append(c)
        yield Progress(k + 1, sweeps, f"kaczmarz sweeps{chosen}")
    return images[-1].T


def kaczmarz_reference(
    sm: SystemMatrix,
    u: np.ndarray,
    lam: float = 1e-3,
    sweeps: int = 50,
    row_weighting: bool = False,
) -> np.ndarray:
    """The textbook row-by-row loop in plain NumPy (one frame), for tests and benchmarks; the
    same defaults as the registry's ``kaczmarz`` (every row of ``sm``: no frequency selection)."""
    s = sm.matrix.astype(np.complex128)
    energy = np.sum(np.abs(s) ** 2, axis=1)
    rows = energy > 0  # rows without energy carry nothing
    w = 1 / np.sqrt(energy[rows]) if row_weighting else np.ones(int(rows.sum()))
    a = s[rows] * w[:, None]
    b = np.asarray(u, dtype=np.complex128)[rows] * w
    lam_abs = lam * np.sum(np.abs(a) ** 2) / a.shape[1]
    root = np.sqrt(lam_abs)
    row_energy = np.sum(np.abs(a) ** 2, axis=1)
    c = np.zeros(a.shape[1], dtype=np.complex128)
    v = np.zeros(a.shape[0], dtype=np.complex128)
    for _ in range(sweeps):
        for k in range(a.shape[0]):
            tau = (b[k] - a[k] @ c - root * v[k]) / (row_energy[k] + lam_abs)
            c += tau * a[k].conj()
            v[k] += root * tau
        c = np.maximum(c.real, 0).astype(np.complex128)
    return c.real


register(
    Method(
        name="kaczmarz",
        title="ART (Kaczmarz with Tikhonov)",
        description="Row-energy normalised Kaczmarz; lambda relative to ||S||_F^2 / N; real and "
        "non-negative projections after each sweep.",
        params=(
            Param(
                "lam",
                float,
                "auto",
                "Tikhonov weight; auto: GCV's choice on the measurements / 3",
                0.0,
                normalization="normalization",
                auto=True,
            ),
            Param("sweeps", int, DEFAULT_SWEEPS, "passes over all rows", 1, 100000),
            Param(
                "row_weighting", bool, False, "normalise every row to unit energy (off: textbook)"
            ),
            Param("shuffle", bool, False, "visit rows in a random (fixed) order"),
            Param("seed", int, 0, "seed of the shuffled order"),
            Param("enforce_real", bool, True, "project onto real images after each sweep"),
            Param("enforce_positive", bool, True, "project onto non-negative images"),
            Param(
                "normalization",
                "choice",
                "system-matrix",
                "scaling of lam: system-matrix (lam ||S||_F^2 / N of the swept matrix) or none",
                choices=choices(Normalization.SYSTEM_MATRIX, Normalization.NONE),
            ),
        ),
        solve=iter_kaczmarz,
        reference="Knopp et al. 2010; DERnet paper Table 1 (ART)",
        order=0,
    )
)
