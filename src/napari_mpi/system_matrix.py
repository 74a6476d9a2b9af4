"""The system matrix: one row per (receive channel, frequency) pair, one column per voxel."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from .acquisition import Acquisition
from .grid import Grid


@dataclass(eq=False)
class SystemMatrix:
    """A calibrated MPI system matrix and everything needed to use it.

    Rows are ordered by period (patch), then receive channel, then frequency ascending; for the
    usual single-period calibration that is channel-major, frequency ascending.

    Parameters
    ----------
    matrix : ndarray, shape (rows, voxels)
        System-matrix entries, complex64. Column ``p`` is voxel ``p`` of the grid flattened in
        C order over (z, y, x), i.e. x fastest, as MDF stores it.
    channels : ndarray of int, shape (rows,)
        Receive channel of each row (0-based).
    frequency_indices : ndarray of int, shape (rows,)
        rfft bin of each row (0-based; bin ``k`` is ``k / cycle`` Hz).
    frequencies : ndarray of float, shape (rows,)
        Frequency of each row (Hz).
    grid_shape : tuple of int
        Voxels per axis, (z, y, x).
    fov : array of float, shape (3,)
        Field of view (m), (z, y, x).
    center : array of float, shape (3,)
        Centre of the field of view (m), (z, y, x).
    snr : ndarray of float, shape (rows,), optional
        Signal-to-noise ratio of each row, as stored in or estimated from the calibration.
    periods : ndarray of int, shape (rows,), optional
        Drive-field period (patch) of each row (0-based); zeros when not given.
    acquisition : Acquisition, optional
        Drive-field and receiver settings of the calibration scan.
    background : ndarray, shape (background_frames, rows), optional
        Empty-scanner frames of the same rows, kept for noise estimates and for writing.
    background_corrected : bool
        Whether the mean background has been subtracted from ``matrix``.
    transfer_function_corrected : bool
        Whether ``matrix`` has been divided by the receiver transfer function.
    source : str, optional
        File the matrix was read from.
    metadata : dict
        Free-form extra information (study, tracer, calibration method, ...).
    """

    matrix: np.ndarray
    channels: np.ndarray
    frequency_indices: np.ndarray
    frequencies: np.ndarray
    grid_shape: tuple[int, int, int]
    fov: np.ndarray
    center: np.ndarray
    snr: np.ndarray | None = None
    periods: np.ndarray | None = None
    acquisition: Acquisition | None = None
    background: np.ndarray | None = None
    background_corrected: bool = False
    transfer_function_corrected: bool = False
    source: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        matrix = np.asarray(self.matrix)
        if matrix.ndim != 2:
            raise ValueError(f"SystemMatrix.matrix must be 2-D (rows, voxels), got {matrix.shape}")
        self.matrix = np.ascontiguousarray(matrix, dtype=np.complex64)
        self.grid = Grid(self.grid_shape, self.fov, self.center)
        self.grid_shape, self.fov, self.center = self.grid.shape, self.grid.fov, self.grid.center
        rows, voxels = self.matrix.shape
        if voxels != self.grid.num_voxels:
            raise ValueError(
                f"SystemMatrix has {voxels} columns but grid_shape {self.grid_shape} has "
                f"{self.grid.num_voxels} voxels"
            )
        if self.periods is None:
            self.periods = np.zeros(rows, dtype=np.int64)
        for name, dtype in (
            ("channels", np.int64),
            ("frequency_indices", np.int64),
            ("frequencies", np.float64),
            ("periods", np.int64),
            ("snr", np.float64),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value, dtype=dtype).reshape(-1)
            if value.shape != (rows,):
                raise ValueError(
                    f"SystemMatrix.{name} must have one entry per row ({rows}), got {value.shape}"
                )
            setattr(self, name, value)
        if self.background is not None:
            bg = np.asarray(self.background, dtype=np.complex64)
            if bg.ndim != 2 or bg.shape[1] != rows:
                raise ValueError(
                    f"SystemMatrix.background must be (frames, {rows}), got shape {bg.shape}"
                )
            self.background = bg

    # -- shape and geometry -------------------------------------------------------------------
    @property
    def num_rows(self) -> int:
        """Number of rows (selected channel/frequency pairs)."""
        return int(self.matrix.shape[0])

    @property
    def num_voxels(self) -> int:
        """Number of voxels (columns)."""
        return int(self.matrix.shape[1])

    @property
    def voxel_size(self) -> np.ndarray:
        """Voxel edge lengths (m), (z, y, x)."""
        return self.grid.voxel_size

    @property
    def num_background_frames(self) -> int:
        """Number of background frames kept with the matrix."""
        return 0 if self.background is None else int(self.background.shape[0])

    def row_labels(self) -> list[str]:
        """Human-readable label of each row: channel, frequency and bin."""
        multi_period = bool(np.any(self.periods))
        labels = []
        for j, c, k, f in zip(
            self.periods, self.channels, self.frequency_indices, self.frequencies, strict=True
        ):
            head = f"period {j}, " if multi_period else ""
            labels.append(f"{head}channel {c}, {f / 1e3:.3f} kHz (bin {k})")
        return labels

    def patterns(self) -> np.ndarray:
        """The rows as images, shape (rows, z, y, x), complex64."""
        return self.matrix.reshape((self.num_rows, *self.grid_shape))

    # -- derived matrices ---------------------------------------------------------------------
    def select_rows(self, rows: np.ndarray) -> SystemMatrix:
        """A new system matrix restricted to ``rows`` (a boolean mask or integer indices)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (self.num_rows,):
                raise ValueError(f"row mask must have shape ({self.num_rows},), got {rows.shape}")
            rows = np.flatnonzero(rows)
        return replace(
            self,
            matrix=self.matrix[rows],
            channels=self.channels[rows],
            frequency_indices=self.frequency_indices[rows],
            frequencies=self.frequencies[rows],
            periods=self.periods[rows],
            snr=None if self.snr is None else self.snr[rows],
            background=None if self.background is None else self.background[:, rows],
            metadata=dict(self.metadata),
        )

    def fingerprint(self) -> str:
        """A short hash of the matrix, its rows and its grid.

        Two system matrices with the same fingerprint have identical entries, row labels and
        geometry; models trained for one can be used with the other.
        """
        h = hashlib.sha256()
        h.update(np.asarray(self.grid_shape, dtype=np.int64).tobytes())
        h.update(np.round(np.concatenate([self.fov, self.center]) * 1e9).astype(np.int64).tobytes())
        for arr in (self.periods, self.channels, self.frequency_indices):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        h.update(self.matrix.tobytes())
        return h.hexdigest()[:16]

    def signature(self, probes: int = 2) -> dict:
        """A float summary to compare matrices within tolerance (see :func:`same_signature`).

        Row norms, and the matrix applied to ``probes`` fixed pseudo-random vectors, with the
        grid. Unlike :meth:`fingerprint`, it does not change when a matrix is recomputed with
        rounding differences in the last bits.
        """
        rng = np.random.default_rng(12345)
        vectors = rng.standard_normal((self.num_voxels, probes)).astype(np.float32)
        proj = self.matrix @ vectors
        return {
            "grid_shape": list(self.grid_shape),
            "fov": self.fov.tolist(),
            "center": self.center.tolist(),
            "row_norms": np.linalg.norm(self.matrix, axis=1).astype(float).tolist(),
            "projection_real": proj.real.astype(float).ravel().tolist(),
            "projection_imag": proj.imag.astype(float).ravel().tolist(),
        }

    def same_signature(self, signature: dict, rtol: float = 1e-3) -> bool:
        """Whether ``signature`` (from :meth:`signature`) describes this matrix within ``rtol``."""
        mine = self.signature()
        if mine["grid_shape"] != list(signature.get("grid_shape", [])):
            return False
        for key in ("fov", "center"):
            if not np.allclose(mine[key], signature[key], rtol=1e-6, atol=1e-9):
                return False
        for key in ("row_norms", "projection_real", "projection_imag"):
            a, b = np.asarray(mine[key]), np.asarray(signature.get(key, []))
            if a.shape != b.shape:
                return False
            scale = max(float(np.abs(b).max(initial=0.0)), 1e-30)
            if not np.allclose(a, b, rtol=rtol, atol=rtol * scale):
                return False
        return True

    def __repr__(self) -> str:
        return (
            f"SystemMatrix(rows={self.num_rows}, grid_zyx={self.grid_shape}, "
            f"channels={np.unique(self.channels).tolist()}, "
            f"fov_mm={np.round(self.fov * 1e3, 3).tolist()}, "
            f"center_mm={np.round(self.center * 1e3, 3).tolist()}, "
            f"background_frames={self.num_background_frames})"
        )


def check_system_matrix(system_matrix: SystemMatrix, rows_per_chunk: int = 4096) -> None:
    """Refuse a system matrix nothing can be reconstructed with, saying why.

    The matrix must have at least one row and one voxel, hold only finite values and have at
    least one non-zero row. It is scanned in blocks of ``rows_per_chunk`` rows, so the check
    needs little memory beyond the matrix.

    Raises
    ------
    ValueError
        Naming the matrix's source file, what is wrong and which rows.
    """
    m = np.asarray(system_matrix.matrix)
    where = f" ({system_matrix.source})" if system_matrix.source else ""
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(
            f"the system matrix{where} has no rows: the frequency selection (min/max frequency, "
            "SNR threshold, channels) leaves none; select more frequencies"
        )
    if m.shape[1] == 0:
        raise ValueError(f"the system matrix{where} has no voxels (columns)")
    bad: list[int] = []
    nonzero = False
    for start in range(0, m.shape[0], rows_per_chunk):
        block = m[start : start + rows_per_chunk]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad.extend((start + np.flatnonzero(~finite)).tolist())
        nonzero = nonzero or bool(np.any(block[finite] != 0))
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        raise ValueError(
            f"the system matrix{where} contains NaN or infinite values in {len(bad)} of "
            f"{m.shape[0]} rows (rows {shown}); re-read or re-simulate it, or select rows "
            "without them"
        )
    if not nonzero:
        raise ValueError(
            f"the system matrix{where} is all zeros ({m.shape[0]} rows x {m.shape[1]} voxels): "
            "every image would be zero; check the calibration and the frequency selection"
        )
