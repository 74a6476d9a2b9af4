"""Equilibrium (Langevin) magnetisation of superparamagnetic particles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Boltzmann constant (J/K).
BOLTZMANN = 1.380649e-23
#: Vacuum permeability (T m / A).
MU0 = 4e-7 * np.pi
#: Density of magnetite (kg/m^3) and its iron mass fraction (3 Fe per Fe3O4).
MAGNETITE_DENSITY = 5170.0
MAGNETITE_IRON_FRACTION = 3 * 55.845 / 231.533
IRON_MOLAR_MASS = 55.845e-3  # kg/mol


def langevin(xi: np.ndarray) -> np.ndarray:
    """The Langevin function L(xi) = coth(xi) - 1/xi, accurate near 0 (where L ~ xi/3)."""
    xi = np.asarray(xi, dtype=np.float64)
    out = np.empty_like(xi)
    small = np.abs(xi) < 1e-3
    xs = xi[small]
    out[small] = xs / 3 - xs**3 / 45
    xl = xi[~small]
    out[~small] = 1.0 / np.tanh(xl) - 1.0 / xl
    return out


def langevin_derivative(xi: np.ndarray) -> np.ndarray:
    """L'(xi) = 1/xi^2 - 1/sinh(xi)^2, accurate near 0 (where L' ~ 1/3 - xi^2/15)."""
    xi = np.asarray(xi, dtype=np.float64)
    out = np.empty_like(xi)
    small = np.abs(xi) < 1e-2
    xs = xi[small]
    out[small] = 1 / 3 - xs**2 / 15 + 2 * xs**4 / 315
    xl = np.abs(xi[~small])
    with np.errstate(over="ignore"):
        out[~small] = 1.0 / xl**2 - 1.0 / np.sinh(xl) ** 2
    return out


def langevin_over_xi(xi: np.ndarray) -> np.ndarray:
    """L(xi)/xi, the envelope of the field-direction (normal) PSF part; 1/3 at 0."""
    xi = np.asarray(xi, dtype=np.float64)
    out = np.full_like(xi, 1 / 3)
    nz = np.abs(xi) >= 1e-3
    out[nz] = langevin(xi[nz]) / xi[nz]
    out[~nz] = 1 / 3 - xi[~nz] ** 2 / 45
    return out


@dataclass(frozen=True)
class Particles:
    """A monodisperse magnetite tracer in the equilibrium (Langevin) model.

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

    @property
    def particles_per_mmol_per_litre(self) -> float:
        """Particles per m^3 at an iron concentration of 1 mmol/L (= 1 mol/m^3)."""
        core_volume = np.pi * self.diameter**3 / 6
        iron_mol = core_volume * MAGNETITE_DENSITY * MAGNETITE_IRON_FRACTION / IRON_MOLAR_MASS
        return 1.0 / iron_mol

    def fwhm(self, gradient: float) -> float:
        """Resolution (FWHM of the 1D x-space PSF L') at a gradient (T/m): 4.16 kB T / (m G)."""
        return 4.1622 / (self.beta * abs(gradient))

    def mean_moment(self, field: np.ndarray) -> np.ndarray:
        """Mean moment along the field (A m^2) for fields ``field`` (T), shape (..., 3)."""
        field = np.asarray(field, dtype=np.float64)
        norm = np.sqrt(np.einsum("...i,...i->...", field, field))[..., np.newaxis]
        scale = self.moment * self.beta * langevin_over_xi(self.beta * norm)
        return scale * field  # m L(xi) B/|B| = m beta L(xi)/xi B
