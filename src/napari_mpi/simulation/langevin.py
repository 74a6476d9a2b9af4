"""Equilibrium (Langevin) magnetisation of superparamagnetic particles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Boltzmann constant (J/K).
BOLTZMANN = 1.380649e-23
#: Vacuum permeability (T m / A).
MU0 = 4e-7 * np.pi


def langevin(xi: np.ndarray) -> np.ndarray:
    """The Langevin function L(xi) = coth(xi) - 1/xi, accurate near 0 (where L ~ xi/3).

    Parameters
    ----------
    xi : array_like
        Dimensionless field, m |B| / (kB T).
    """
    xi = np.asarray(xi, dtype=np.float64)
    out = np.empty_like(xi)
    small = np.abs(xi) < 1e-3
    xs = xi[small]
    out[small] = xs / 3 - xs**3 / 45
    xl = xi[~small]
    out[~small] = 1.0 / np.tanh(xl) - 1.0 / xl
    return out


@dataclass(frozen=True)
class Particles:
    """A monodisperse tracer in the equilibrium (Langevin) model.

    Parameters
    ----------
    diameter : float
        Magnetic core diameter (m). Default 25 nm (Perimag-like).
    saturation_magnetisation : float
        mu0 Ms of the core material (T). Default 0.6 T (magnetite).
    temperature : float
        Temperature (K). Default 300 K.
    """

    diameter: float = 25e-9
    saturation_magnetisation: float = 0.6
    temperature: float = 300.0

    def __post_init__(self) -> None:
        for name in ("diameter", "saturation_magnetisation", "temperature"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"Particles.{name} must be positive, got {value!r}")

    @property
    def moment(self) -> float:
        """Magnetic moment of one particle, m = Ms pi d^3 / 6 (A m^2)."""
        return self.saturation_magnetisation / MU0 * np.pi * self.diameter**3 / 6

    @property
    def beta(self) -> float:
        """xi per tesla: m / (kB T) (1/T)."""
        return self.moment / (BOLTZMANN * self.temperature)

    def mean_moment(self, field: np.ndarray) -> np.ndarray:
        """Mean moment along the field (A m^2) for fields ``field`` (T), shape (..., 3)."""
        field = np.asarray(field, dtype=np.float64)
        norm = np.linalg.norm(field, axis=-1, keepdims=True)
        xi = self.beta * norm
        with np.errstate(invalid="ignore", divide="ignore"):
            direction = np.where(norm > 0, field / norm, 0.0)
        return self.moment * langevin(xi) * direction
