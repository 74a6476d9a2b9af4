"""Field-free-point scanners: selection gradient, drive fields, offsets and receive coils."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product
from math import lcm

import numpy as np

from ..acquisition import Acquisition

WAVEFORMS = ("sine", "triangle")


@dataclass(frozen=True, eq=False)
class Scanner:
    """A field-free-point (FFP) scanner.

    Vectors are in (x, y, z) order; fields in tesla (mu0 H), which is also MDF's T/mu0.
    Drive channel ``d`` acts along axis ``d`` (x, then y, then z). Sine drives on every channel
    give a Lissajous trajectory (1D, 2D or 3D); a fast sine on x with a slow triangle on y gives
    a Cartesian (raster) trajectory.

    Parameters
    ----------
    base_frequency : float
        Base frequency (Hz); drive channel d runs at ``base_frequency / dividers[d]``.
    dividers : tuple of int
        One divider per drive channel (x[, y[, z]]).
    drive_amplitude : tuple of float
        Drive-field amplitude per channel (T).
    gradient : tuple of float
        Diagonal of the selection-field gradient, (Gx, Gy, Gz) in T/m; trace-free for a
        Maxwell-consistent magnet, e.g. (-1, -1, 2).
    waveforms : tuple of str, optional
        ``"sine"`` or ``"triangle"`` per drive channel; all sine by default.
    drive_phase : tuple of float, optional
        Phase per drive channel (rad); for sine drives the field is ``A sin(2 pi f t + phase)``.
    offset_field : tuple of float
        Static homogeneous field added to the drive (T), (x, y, z): shifts the FFP.
    num_sampling_points : int, optional
        Receive samples per repetition cycle; by default one per base-clock tick of the cycle.
    receive_sensitivity : ndarray, shape (C, 3), optional
        Sensitivity of each receive coil to the x, y, z moment; by default one coil per driven
        axis (identity rows).
    mixing_order : int, optional
        Default frequency selection of :func:`simulate_system_matrix` for this scanner: keep
        only mixing frequencies ``sum(m_d f_d)`` with ``sum(|m_d|) <= mixing_order`` (None
        keeps every bin). Bounds memory for 3D scanners whose cycle has tens of thousands of
        bins.
    name : str
        Preset name or description.
    """

    base_frequency: float = 2.5e6
    dividers: tuple[int, ...] = (102, 96)
    drive_amplitude: tuple[float, ...] = (0.012, 0.012)
    gradient: tuple[float, float, float] = (-1.0, -1.0, 2.0)
    waveforms: tuple[str, ...] | None = None
    drive_phase: tuple[float, ...] | None = None
    offset_field: tuple[float, float, float] = (0.0, 0.0, 0.0)
    num_sampling_points: int | None = None
    receive_sensitivity: np.ndarray | None = None
    mixing_order: int | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        d = len(self.dividers)
        if d not in (1, 2, 3) or len(self.drive_amplitude) != d:
            raise ValueError(
                f"dividers and drive_amplitude need 1 to 3 matching entries, got {self.dividers} "
                f"and {self.drive_amplitude}"
            )
        if any(int(v) <= 0 for v in self.dividers):
            raise ValueError(f"dividers must be positive integers, got {self.dividers}")
        if not self.base_frequency > 0:
            raise ValueError(f"base_frequency must be positive (Hz), got {self.base_frequency}")
        if any(not a > 0 for a in self.drive_amplitude):
            raise ValueError(f"drive_amplitude must be positive (T), got {self.drive_amplitude}")
        if len(self.gradient) != 3 or not np.all(np.isfinite(self.gradient)):
            raise ValueError(f"gradient must be three finite values (T/m), got {self.gradient}")
        for axis in range(d):
            if self.gradient[axis] == 0:
                raise ValueError(f"gradient along driven axis {'xyz'[axis]} must not be zero")
        waveforms = self.waveforms or ("sine",) * d
        if len(waveforms) != d or any(w not in WAVEFORMS for w in waveforms):
            raise ValueError(f"waveforms must be {d} of {WAVEFORMS}, got {waveforms}")
        object.__setattr__(self, "waveforms", tuple(waveforms))
        if self.drive_phase is None:
            object.__setattr__(self, "drive_phase", (0.0,) * d)
        if len(self.drive_phase) != d:
            raise ValueError(f"drive_phase needs {d} entries, got {self.drive_phase}")
        if self.num_sampling_points is None:
            object.__setattr__(self, "num_sampling_points", self.cycle_dividers)
        if int(self.num_sampling_points) < 4:
            raise ValueError(f"num_sampling_points must be >= 4, got {self.num_sampling_points}")
        if self.receive_sensitivity is None:
            object.__setattr__(self, "receive_sensitivity", np.eye(3)[:d])
        sens = np.asarray(self.receive_sensitivity, dtype=np.float64)
        if sens.ndim != 2 or sens.shape[1] != 3 or sens.shape[0] < 1:
            raise ValueError(f"receive_sensitivity must be (C, 3), got {sens.shape}")
        object.__setattr__(self, "receive_sensitivity", sens)
        if self.mixing_order is not None and self.mixing_order < 1:
            raise ValueError(f"mixing_order must be >= 1 or None, got {self.mixing_order}")

    # -- timing -------------------------------------------------------------------------------
    @property
    def num_drive_channels(self) -> int:
        """Number of drive channels (1 to 3)."""
        return len(self.dividers)

    @property
    def num_receive_channels(self) -> int:
        """Number of receive coils."""
        return int(self.receive_sensitivity.shape[0])

    @property
    def cycle_dividers(self) -> int:
        """Base-clock ticks per repetition cycle: the least common multiple of the dividers."""
        return lcm(*(int(v) for v in self.dividers))

    @property
    def cycle(self) -> float:
        """Repetition time of the trajectory (s)."""
        return self.cycle_dividers / self.base_frequency

    @property
    def drive_frequencies(self) -> np.ndarray:
        """Drive frequency per channel (Hz)."""
        return self.base_frequency / np.asarray(self.dividers, dtype=np.float64)

    @property
    def times(self) -> np.ndarray:
        """Sampling times over one cycle (s), shape (V,)."""
        return np.arange(self.num_sampling_points) * (self.cycle / self.num_sampling_points)

    @property
    def frequencies(self) -> np.ndarray:
        """Frequency of every rfft bin of one cycle (Hz)."""
        return np.arange(self.num_sampling_points // 2 + 1) / self.cycle

    # -- fields -------------------------------------------------------------------------------
    def drive_field(self, t: np.ndarray) -> np.ndarray:
        """Homogeneous drive plus offset field at times ``t`` (T), shape (len(t), 3)."""
        t = np.asarray(t, dtype=np.float64)
        out = np.tile(np.asarray(self.offset_field, dtype=np.float64), (t.size, 1))
        for d in range(self.num_drive_channels):
            f, a, ph = self.drive_frequencies[d], self.drive_amplitude[d], self.drive_phase[d]
            angle = 2 * np.pi * f * t + ph
            if self.waveforms[d] == "sine":
                out[:, d] += a * np.sin(angle)
            else:  # MDF's triangle: the 2 pi-periodic |t + pi/2| - pi/2 on [-3pi/2, pi/2], scaled
                phase = np.mod(angle + 1.5 * np.pi, 2 * np.pi) - 1.5 * np.pi
                out[:, d] += a * (np.abs(phase + np.pi / 2) - np.pi / 2) / (np.pi / 2)
        return out

    def field(self, positions: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Total field B(r, t) = G r + B_drive(t) (T) for positions (n, 3) m: shape (n, V, 3)."""
        grad = np.asarray(self.gradient, dtype=np.float64)
        return positions[:, np.newaxis, :] * grad + self.drive_field(t)[np.newaxis]

    def ffp(self, t: np.ndarray | None = None) -> np.ndarray:
        """Field-free-point position at times ``t`` (m), shape (V, 3); 0 along undriven axes."""
        t = self.times if t is None else t
        grad = np.asarray(self.gradient, dtype=np.float64)
        drive = self.drive_field(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = np.where(grad != 0, -drive / grad, 0.0)
        return pos

    @property
    def fov(self) -> np.ndarray:
        """Drive-field FOV: 2 A_d / |G_d| along each driven axis (m), (x, y, z); 0 elsewhere."""
        fov = np.zeros(3)
        for d, a in enumerate(self.drive_amplitude):
            fov[d] = 2 * a / abs(self.gradient[d])
        return fov

    def mixing_bins(self, order: int) -> np.ndarray:
        """rfft bins of the mixing frequencies sum(m_d f_d) with sum(|m_d|) <= order, sorted."""
        ticks = np.array([self.cycle_dividers // int(v) for v in self.dividers])  # bins per f_d
        num_freq = self.num_sampling_points // 2 + 1
        ranges = [range(-order, order + 1)] * self.num_drive_channels
        bins = set()
        for m in product(*ranges):
            if sum(abs(v) for v in m) <= order:
                k = int(np.dot(m, ticks))
                if 0 < k < num_freq:
                    bins.add(k)
        return np.array(sorted(bins), dtype=np.int64)

    def acquisition(self) -> Acquisition:
        """The MDF acquisition description of this scanner."""
        v = int(self.num_sampling_points)
        return Acquisition(
            base_frequency=self.base_frequency,
            dividers=np.asarray(self.dividers),
            drive_strength=np.asarray(self.drive_amplitude),
            drive_phase=np.asarray(self.drive_phase),
            num_sampling_points=v,
            bandwidth=v / (2 * self.cycle),
            num_receive_channels=self.num_receive_channels,
            gradient=np.asarray(self.gradient, dtype=np.float64),
            waveform=self.waveforms[0],
        )

    def with_changes(self, **changes) -> Scanner:
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)


#: Built-in scanners modelled on public preclinical FFP scanner data (2.5 MHz base clock,
#: dividers 102/96/99, 12 mT drive, gradient -1/-1/2 T/m, FOV 24 x 24 x 12 mm, one receive
#: coil per axis), plus a 1D scanner and a Cartesian (raster) variant.
PRESETS: dict[str, Scanner] = {
    "preclinical-1d": Scanner(
        dividers=(102,), drive_amplitude=(0.012,), gradient=(-1.0, -1.0, 2.0), name="preclinical-1d"
    ),
    "preclinical-2d": Scanner(
        dividers=(102, 96), drive_amplitude=(0.012, 0.012), name="preclinical-2d"
    ),
    "preclinical-3d": Scanner(
        dividers=(102, 96, 99),
        drive_amplitude=(0.012, 0.012, 0.012),
        mixing_order=12,
        name="preclinical-3d",
    ),
    "cartesian-2d": Scanner(
        dividers=(102, 102 * 32),
        drive_amplitude=(0.012, 0.012),
        waveforms=("sine", "triangle"),
        name="cartesian-2d",
    ),
}


def get_preset(name: str) -> Scanner:
    """A built-in scanner by name; ValueError listing the presets when unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown scanner preset '{name}'; choose one of {sorted(PRESETS)}"
        ) from None
