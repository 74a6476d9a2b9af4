"""Acquisition parameters shared by calibrations and measurements: drive field and receiver."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)
class Acquisition:
    """The drive-field and receiver settings that fix what a frequency bin means.

    Field strengths follow the MDF convention of tesla per mu0 (T/mu0); gradients T/m/mu0.
    Vectors over space are in (x, y, z) order here, as in MDF.

    Parameters
    ----------
    base_frequency : float
        Base frequency from which drive frequencies are divided (Hz).
    dividers : array of int, shape (D,)
        Divider of each drive channel; drive frequency d is ``base_frequency / dividers[d]``.
    drive_strength : array of float, shape (D,)
        Drive-field amplitude per channel (T/mu0).
    num_sampling_points : int
        Samples per drive-field cycle and receive channel (MDF's V).
    bandwidth : float
        Receiver bandwidth (Hz): half the sampling rate.
    num_receive_channels : int
        Number of receive channels (MDF's C).
    drive_phase : array of float, shape (D,), optional
        Drive-field phase per channel (rad). Zeros when not given.
    gradient : array of float, shape (3,) or (3, 3), optional
        Selection-field gradient (T/m/mu0): its diagonal, the strengths along x, y, z, or the
        full 3 x 3 Jacobian of MDF's ``acquisition/gradient`` (row i, column j: dH_i/dx_j).
        Stored as the diagonal; the full matrix is :attr:`gradient_matrix`.
    gradient_matrix : array of float, shape (3, 3), optional
        The full gradient matrix. Filled from ``gradient`` when not given (diag(gradient) for a
        diagonal); when both are given, ``gradient`` must be its diagonal.
    num_periods : int
        Drive-field periods (patches) per frame (MDF's J).
    num_averages : int
        Block averages per period.
    waveform : str
        Drive-field waveform name (``"sine"``, ``"triangle"`` or ``"custom"``).
    """

    base_frequency: float
    dividers: np.ndarray
    drive_strength: np.ndarray
    num_sampling_points: int
    bandwidth: float
    num_receive_channels: int
    drive_phase: np.ndarray | None = None
    gradient: np.ndarray | None = None
    num_periods: int = 1
    num_averages: int = 1
    waveform: str = "sine"
    extra: dict = field(default_factory=dict)
    gradient_matrix: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.base_frequency = float(self.base_frequency)
        self.dividers = np.atleast_1d(np.asarray(self.dividers, dtype=np.int64))
        self.drive_strength = np.atleast_1d(np.asarray(self.drive_strength, dtype=np.float64))
        if self.drive_phase is None:
            self.drive_phase = np.zeros(self.dividers.shape, dtype=np.float64)
        self.drive_phase = np.atleast_1d(np.asarray(self.drive_phase, dtype=np.float64))
        self._set_gradient()
        self.num_sampling_points = int(self.num_sampling_points)
        self.bandwidth = float(self.bandwidth)
        self.num_receive_channels = int(self.num_receive_channels)
        self.num_periods = int(self.num_periods)
        self.num_averages = int(self.num_averages)
        finite = {
            "base_frequency": self.base_frequency,
            "bandwidth": self.bandwidth,
            "drive_strength": self.drive_strength,
            "drive_phase": self.drive_phase,
        }
        for name, value in finite.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"Acquisition.{name} must be finite, got {value!r}")
        checks = {
            "base_frequency": self.base_frequency > 0,
            "num_sampling_points": self.num_sampling_points >= 2,
            "bandwidth": self.bandwidth > 0,
            "num_receive_channels": self.num_receive_channels >= 1,
            "num_periods": self.num_periods >= 1,
            "dividers": bool(np.all(self.dividers > 0)) and self.dividers.size >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"Acquisition.{name} must be positive, got {getattr(self, name)!r}"
                )
        d = self.dividers.size
        for name in ("drive_strength", "drive_phase"):
            if getattr(self, name).shape != (d,):
                raise ValueError(
                    f"Acquisition.{name} must have one entry per drive channel ({d}), "
                    f"got shape {getattr(self, name).shape}"
                )

    def _set_gradient(self) -> None:
        """Normalise ``gradient`` (diagonal, (3,)) and ``gradient_matrix`` ((3, 3))."""
        grad, matrix = self.gradient, self.gradient_matrix
        if grad is not None:
            grad = np.asarray(grad, dtype=np.float64)
            if grad.shape == (3, 3):
                if matrix is None:
                    matrix = grad
                grad = np.diag(grad).copy()
            elif grad.size == 3:
                grad = grad.reshape(3)
            else:
                raise ValueError(
                    f"Acquisition.gradient must have shape (3,) or (3, 3), got {grad.shape}"
                )
        if matrix is not None:
            matrix = np.asarray(matrix, dtype=np.float64)
            if matrix.shape != (3, 3):
                raise ValueError(
                    f"Acquisition.gradient_matrix must have shape (3, 3), got {matrix.shape}"
                )
            if grad is None:
                grad = np.diag(matrix).copy()
            elif not np.allclose(np.diag(matrix), grad, rtol=1e-9, atol=0.0):
                raise ValueError(
                    f"Acquisition.gradient {grad.tolist()} is not the diagonal of "
                    f"gradient_matrix {matrix.tolist()}"
                )
        elif grad is not None:
            matrix = np.diag(grad)
        for name, value in (("gradient", grad), ("gradient_matrix", matrix)):
            if value is not None and not np.all(np.isfinite(value)):
                raise ValueError(f"Acquisition.{name} must be finite, got {value.tolist()}")
        self.gradient, self.gradient_matrix = grad, matrix

    @property
    def num_drive_channels(self) -> int:
        """Number of drive-field channels (MDF's D)."""
        return int(self.dividers.size)

    @property
    def drive_frequencies(self) -> np.ndarray:
        """Drive frequency of each channel (Hz), shape (D,)."""
        return self.base_frequency / self.dividers

    @property
    def cycle(self) -> float:
        """Duration of one drive-field cycle (s): the receiver's period ``V / (2 * bandwidth)``."""
        return self.num_sampling_points / (2.0 * self.bandwidth)

    @property
    def num_frequencies(self) -> int:
        """Number of rfft bins of one cycle (MDF's L = V // 2 + 1)."""
        return self.num_sampling_points // 2 + 1

    @property
    def frequencies(self) -> np.ndarray:
        """Frequency of every rfft bin (Hz), shape (L,)."""
        return np.arange(self.num_frequencies) / self.cycle

    def differences(self, other: Acquisition, rtol: float = 1e-3) -> list[str]:
        """Describe how ``other`` differs in the settings that decide whether data can be combined.

        Returns an empty list when the two acquisitions are compatible: same frequency axis
        (sampling points and bandwidth), same drive frequencies, drive strengths and gradient
        within ``rtol`` relative tolerance.
        """
        out: list[str] = []
        if self.num_sampling_points != other.num_sampling_points:
            out.append(
                f"numSamplingPoints {self.num_sampling_points} vs {other.num_sampling_points}"
            )
        if not np.isclose(self.bandwidth, other.bandwidth, rtol=rtol):
            out.append(f"bandwidth {self.bandwidth:g} Hz vs {other.bandwidth:g} Hz")
        if self.dividers.shape != other.dividers.shape or not np.allclose(
            self.drive_frequencies, other.drive_frequencies, rtol=rtol
        ):
            out.append(
                f"drive frequencies {np.round(self.drive_frequencies, 3).tolist()} Hz vs "
                f"{np.round(other.drive_frequencies, 3).tolist()} Hz"
            )
        elif not np.allclose(self.drive_strength, other.drive_strength, rtol=max(rtol, 0.05)):
            out.append(
                f"drive strengths {self.drive_strength.tolist()} vs "
                f"{other.drive_strength.tolist()} T/mu0"
            )
        if (
            self.gradient is not None
            and other.gradient is not None
            and not np.allclose(self.gradient, other.gradient, rtol=max(rtol, 0.05), atol=1e-9)
        ):
            out.append(f"gradient {self.gradient.tolist()} vs {other.gradient.tolist()} T/m/mu0")
        return out
