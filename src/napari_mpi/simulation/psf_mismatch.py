"""A 2D x-space PSF that deconvolution gets wrong: the nominal Langevin PSF a user computes, and
the true one a scanner produces (particle relaxation, a gradient error).

x-space MPI images are the particle distribution convolved with a PSF (Goodwill & Conolly
2011). A user deconvolves with the *nominal* PSF: the adiabatic Langevin PSF
(:func:`napari_mpi.simulation.xspace.psf_kernel`, both in-plane receive channels) at the
gradient the scanner is specified for. The *true* PSF differs in the two ways the DC_GAN paper
names (``../shared/seeds/001_...``):

- **particle relaxation** (Debye model): the magnetisation follows the field with a delay,
  m(t) = (m_adiabatic * r)(t), r(t) = exp(-t / tau) / tau for t >= 0. The field-free point
  moves along the scan direction (x) at speed v, so in the image this is a one-sided
  exponential kernel exp(-s / (v tau)) / (v tau) along +x (s >= 0): the PSF is wider and
  asymmetric, a comet tail behind every object (Croft et al. 2012). v is the FFP speed at the
  centre of a sinusoidal drive, v = 2 pi f A / G (drive frequency f, amplitude A, gradient G),
  and only the rising half cycle is imaged (one scan direction: the tail is not symmetrised);
- **hardware imperfection**: the gradient the scanner really has differs from its
  specification by ``gradient_error`` (relative, per in-plane axis x, y): a weaker gradient
  widens the PSF along that axis.

:class:`XSpaceBlur` holds these parameters; :meth:`XSpaceBlur.nominal_psf` and
:meth:`XSpaceBlur.true_psf` sample the two on a grid (2n-1 voxels per axis, sum 1, shape
(1, 2n-1, 2n-1) for a 2D grid (z, y, x) with one z layer), :meth:`XSpaceBlur.native` makes the
native image of a phantom (true PSF, then white Gaussian noise at ``snr_db``). The defaults are
a low gradient (2 T/m: nominal FWHM about 3 mm on the 2D PSF, of the order of the DC_GAN
paper's 1.0-3.4 mm tube gaps), 1 us relaxation (1.6 mm tail at 25 kHz, 20 mT) and a 20 %
weaker x gradient. Numpy only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from ..grid import Grid
from .langevin import Particles
from .xspace import psf_kernel

__all__ = ["XSpaceBlur", "relaxation_kernel"]


def relaxation_kernel(length: float, spacing: float, size: int) -> np.ndarray:
    """The one-sided Debye kernel along the scan direction, sampled on ``size`` (odd) voxels
    centred on 0: exp(-s / length) for s >= 0, zero before, each voxel the kernel's integral
    over it (exact for any ``length``), sum 1. ``length`` = v tau (m); 0 gives a delta."""
    if size % 2 == 0 or size < 1:
        raise ValueError(f"relaxation kernel size must be odd and positive, got {size}")
    out = np.zeros(size)
    centre = size // 2
    if length <= 0:
        out[centre] = 1.0
        return out
    edges = (np.arange(size + 1) - centre - 0.5) * spacing  # voxel edges (m)
    cdf = np.where(edges > 0, 1 - np.exp(-np.clip(edges, 0, None) / length), 0.0)
    out = np.diff(cdf)
    return out / out.sum()


@dataclass(frozen=True)
class XSpaceBlur:
    """Nominal and true x-space PSFs of a 2D scan, and native images (module docstring).

    Parameters
    ----------
    gradient : float
        Nominal in-plane gradient magnitude along x and y (T/m), what the user's PSF assumes.
    particle_diameter : float
        Magnetic core diameter (m) of the Langevin PSF.
    relaxation_time : float
        Debye relaxation time constant tau (s); 0: adiabatic (no relaxation).
    drive_frequency : float
        Drive frequency f (Hz), for the FFP speed v = 2 pi f A / G.
    drive_amplitude : float
        Drive amplitude A (T).
    gradient_error : tuple of float
        Relative error of the true gradient against the nominal one along (x, y): the true
        gradient is gradient * (1 + error). In (-0.9, 9].
    snr_db : float or None
        White Gaussian noise at 20 log10(rms(clean) / rms(noise)) dB added to native images;
        None: none.
    """

    gradient: float = 2.0
    particle_diameter: float = 25e-9
    relaxation_time: float = 1e-6
    drive_frequency: float = 25e3
    drive_amplitude: float = 20e-3
    gradient_error: tuple[float, float] = (-0.2, 0.0)
    snr_db: float | None = 40.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gradient_error", tuple(float(e) for e in self.gradient_error))
        checks = (
            ("gradient", self.gradient > 0, "a positive number of T/m"),
            ("particle_diameter", 1e-9 <= self.particle_diameter <= 200e-9, "in [1, 200] nm"),
            ("relaxation_time", 0 <= self.relaxation_time <= 1e-3, "in [0, 1e-3] s"),
            ("drive_frequency", self.drive_frequency > 0, "a positive number of Hz"),
            ("drive_amplitude", self.drive_amplitude > 0, "a positive number of T"),
            (
                "gradient_error",
                len(self.gradient_error) == 2 and all(-0.9 < e <= 9 for e in self.gradient_error),
                "two relative errors (x, y) in (-0.9, 9]",
            ),
        )
        for name, ok, what in checks:
            value = getattr(self, name)
            finite = np.all(np.isfinite(np.asarray(value, dtype=float)))
            if not (ok and finite):
                raise ValueError(f"XSpaceBlur.{name} must be {what}, got {value!r}")
        if self.snr_db is not None and not np.isfinite(self.snr_db):
            raise ValueError(f"XSpaceBlur.snr_db must be a finite number of dB or None, "
                             f"got {self.snr_db!r}")  # fmt: skip

    # -- derived quantities ------------------------------------------------------------------
    @property
    def scan_speed(self) -> float:
        """FFP speed at the centre of the drive, v = 2 pi f A / G (m/s), nominal gradient."""
        return 2 * np.pi * self.drive_frequency * self.drive_amplitude / self.gradient

    @property
    def relaxation_length(self) -> float:
        """v tau (m): the length of the relaxation tail along +x."""
        return self.scan_speed * self.relaxation_time

    def true_gradient(self) -> tuple[float, float, float]:
        """(gx, gy, gz) of the true scan (T/m); gz = -(gx + gy) (a divergence-free field)."""
        gx = self.gradient * (1 + self.gradient_error[0])
        gy = self.gradient * (1 + self.gradient_error[1])
        return (gx, gy, -(gx + gy))

    def nominal_gradient(self) -> tuple[float, float, float]:
        return (self.gradient, self.gradient, -2 * self.gradient)

    # -- PSFs ---------------------------------------------------------------------------------
    def _check_grid(self, grid: Grid) -> None:
        if grid.shape[0] != 1 or min(grid.shape[1:]) < 3:
            raise ValueError(
                f"XSpaceBlur: expects a 2D grid (1, ny, nx) with ny, nx >= 3, got {grid.shape}"
            )

    def nominal_psf(self, grid: Grid) -> np.ndarray:
        """The PSF the user assumes: adiabatic Langevin at the nominal gradient, (1, 2ny-1,
        2nx-1), sum 1."""
        self._check_grid(grid)
        particles = Particles(diameter=self.particle_diameter)
        return psf_kernel(grid, self.nominal_gradient(), particles, channels=(0, 1))

    def true_psf(self, grid: Grid) -> np.ndarray:
        """The PSF the scanner produces: Langevin at the true gradient, convolved with the
        relaxation kernel along +x, (1, 2ny-1, 2nx-1), sum 1."""
        self._check_grid(grid)
        particles = Particles(diameter=self.particle_diameter)
        k = psf_kernel(grid, self.true_gradient(), particles, channels=(0, 1))
        r = relaxation_kernel(self.relaxation_length, float(grid.voxel_size[2]), k.shape[2])
        out = fftconvolve(k, r[None, None, :], mode="same")
        out = np.clip(out, 0, None)
        return out / out.sum()

    def native(
        self,
        phantom: np.ndarray,
        grid: Grid,
        rng: np.random.Generator | None = None,
        kernel: np.ndarray | None = None,
    ) -> np.ndarray:
        """Native image(s) of ``phantom`` (ny, nx) or (n, ny, nx): true PSF, clipped at 0,
        then noise at ``snr_db`` (per image; ``rng`` default seed 0). float32. ``kernel``:
        ``true_psf(grid)[0]`` computed once by a caller making many images."""
        values = np.asarray(phantom, dtype=np.float64)
        single = values.ndim == 2
        stack = values[None] if single else values
        if stack.ndim != 3 or stack.shape[1:] != tuple(grid.shape[1:]):
            raise ValueError(f"XSpaceBlur.native: phantom shape {values.shape} does not match "
                             f"the grid {tuple(grid.shape[1:])}")  # fmt: skip
        kernel = self.true_psf(grid)[0] if kernel is None else kernel
        rng = rng if rng is not None else np.random.default_rng(0)
        out = np.empty(stack.shape, dtype=np.float32)
        for i, p in enumerate(stack):
            clean = np.clip(fftconvolve(p, kernel, mode="same"), 0, None)
            out[i] = add_noise(clean, self.snr_db, rng)
        return out[0] if single else out

    # -- cards --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gradient_error"] = list(self.gradient_error)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> XSpaceBlur:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"XSpaceBlur: unknown parameters {unknown}; known: {sorted(names)}")
        values = dict(data)
        if "gradient_error" in values:
            values["gradient_error"] = tuple(values["gradient_error"])
        return cls(**values)

    @classmethod
    def parse(cls, text: str | dict | None) -> XSpaceBlur:
        """From "default" / "" / None, a dict, JSON text, or ``key=value,key=value`` text
        (``gradient_error=-0.2:0``: two values joined by ':'; ``snr_db=none``)."""
        if text is None or isinstance(text, XSpaceBlur):
            return text or cls()
        if isinstance(text, dict):
            return cls.from_dict(text)
        s = str(text).strip()
        if s in ("", "default"):
            return cls()
        if s.startswith("{"):
            try:
                return cls.from_dict(json.loads(s))
            except json.JSONDecodeError as exc:
                raise ValueError(f"XSpaceBlur: not valid JSON: {exc}") from None
        values: dict[str, Any] = {}
        for part in s.split(","):
            if "=" not in part:
                raise ValueError(f"XSpaceBlur: expected key=value, got {part.strip()!r}")
            key, value = (t.strip() for t in part.split("=", 1))
            try:
                if key == "gradient_error":
                    values[key] = tuple(float(v) for v in value.split(":"))
                elif key == "snr_db" and value.lower() in ("none", "off"):
                    values[key] = None
                else:
                    values[key] = float(value)
            except ValueError:
                raise ValueError(f"XSpaceBlur: {key}={value!r} is not a number") from None
        return cls.from_dict(values)

    def differences(self, other: XSpaceBlur) -> list[str]:
        """Human-readable differences from ``other`` (relative tolerance 1e-6)."""
        out = []
        a, b = self.to_dict(), other.to_dict()
        for key in a:
            x, y = a[key], b[key]
            if x is None or y is None:
                same = x is y
            else:
                same = np.allclose(np.asarray(x, float), np.asarray(y, float), rtol=1e-6, atol=0)
            if not same:
                out.append(f"{key} {x} vs {y}")
        return out


def add_noise(clean: np.ndarray, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
    """``clean`` plus white Gaussian noise at ``snr_db`` (rms over the image); unchanged for
    None or an all-zero image. float32."""
    clean = np.asarray(clean, dtype=np.float64)
    if snr_db is None:
        return clean.astype(np.float32)
    rms = float(np.sqrt(np.mean(clean**2)))
    if rms == 0:
        return clean.astype(np.float32)
    sigma = rms / 10 ** (snr_db / 20)
    return (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
