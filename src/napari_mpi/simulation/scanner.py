"""Field-free-point scanners: selection gradient, sinusoidal drive fields, receive coils."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import lcm

import numpy as np

from ..acquisition import Acquisition


@dataclass(frozen=True, eq=False)
class Scanner:
    """A field-free-point (FFP) scanner with sinusoidal drive fields (Lissajous trajectory).

    Vectors are in (x, y, z) order; fields in tesla (mu0 H).

    Parameters
    ----------
    base_frequency : float
        Base frequency (Hz); drive channel d runs at ``base_frequency / dividers[d]``.
    dividers : tuple of int
        One divider per drive channel (x, y[, z]).
    drive_amplitude : tuple of float
        Drive-field amplitude per channel (T).
    gradient : tuple of float
        Selection-field gradient along x, y, z (T/m); trace-free for a real magnet.
    num_sampling_points : int
        Receive samples per repetition cycle.
    receive_sensitivity : ndarray, shape (C, 3)
        Sensitivity of each receive coil to the x, y, z moment (a.u.); identity rows by default.
    name : str
        Preset name or description.
    """

    base_frequency: float = 2.5e6
    dividers: tuple[int, ...] = (102, 96)
    drive_amplitude: tuple[float, ...] = (0.012, 0.012)
    gradient: tuple[float, float, float] = (-1.0, -1.0, 2.0)
    num_sampling_points: int | None = None
    receive_sensitivity: np.ndarray | None = None
    name: str = "custom"
    drive_phase: tuple[float, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        d = len(self.dividers)
        if d not in (1, 2, 3) or len(self.drive_amplitude) != d:
            raise ValueError(
                f"dividers and drive_amplitude need 1 to 3 matching entries, got {self.dividers} "
                f"and {self.drive_amplitude}"
            )
        if any(int(v) <= 0 for v in self.dividers):
            raise ValueError(f"dividers must be positive integers, got {self.dividers}")
        if self.base_frequency <= 0:
            raise ValueError(f"base_frequency must be positive (Hz), got {self.base_frequency}")
        if any(a <= 0 for a in self.drive_amplitude):
            raise ValueError(f"drive_amplitude must be positive (T), got {self.drive_amplitude}")
        if self.num_sampling_points is None:
            object.__setattr__(self, "num_sampling_points", self.cycle_dividers)
        if self.num_sampling_points < 4:
            raise ValueError(f"num_sampling_points must be >= 4, got {self.num_sampling_points}")
        if self.receive_sensitivity is None:
            object.__setattr__(self, "receive_sensitivity", np.eye(3)[:d])
        sens = np.asarray(self.receive_sensitivity, dtype=np.float64)
        if sens.ndim != 2 or sens.shape[1] != 3:
            raise ValueError(f"receive_sensitivity must be (C, 3), got {sens.shape}")
        object.__setattr__(self, "receive_sensitivity", sens)
        if self.drive_phase is None:
            object.__setattr__(self, "drive_phase", (0.0,) * d)

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

    def drive_field(self, t: np.ndarray) -> np.ndarray:
        """Homogeneous drive field at times ``t`` (T), shape (len(t), 3)."""
        out = np.zeros((len(t), 3))
        for d, (f, a, ph) in enumerate(
            zip(self.drive_frequencies, self.drive_amplitude, self.drive_phase, strict=True)
        ):
            out[:, d] = a * np.sin(2 * np.pi * f * t + ph)
        return out

    @property
    def fov(self) -> np.ndarray:
        """Drive-field FOV: 2 A_d / |G_d| along each driven axis (m), (x, y, z); 0 elsewhere."""
        fov = np.zeros(3)
        g = np.abs(np.asarray(self.gradient, dtype=np.float64))
        for d, a in enumerate(self.drive_amplitude):
            fov[d] = 2 * a / g[d] if g[d] > 0 else 0.0
        return fov

    def acquisition(self) -> Acquisition:
        """The MDF acquisition description of this scanner (fields in T/mu0 = T)."""
        v = self.num_sampling_points
        return Acquisition(
            base_frequency=self.base_frequency,
            dividers=np.asarray(self.dividers),
            drive_strength=np.asarray(self.drive_amplitude),
            drive_phase=np.asarray(self.drive_phase),
            num_sampling_points=v,
            bandwidth=v / (2 * self.cycle),
            num_receive_channels=self.receive_sensitivity.shape[0],
            gradient=np.asarray(self.gradient, dtype=np.float64),
        )


#: Built-in scanner presets, modelled on public preclinical FFP scanner data.
PRESETS: dict[str, Scanner] = {
    "preclinical-2d": Scanner(
        base_frequency=2.5e6,
        dividers=(102, 96),
        drive_amplitude=(0.012, 0.012),
        gradient=(-1.0, -1.0, 2.0),
        name="preclinical-2d",
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
