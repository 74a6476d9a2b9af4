"""The degradation an enhancement method undoes: a layered (z-stepped) x-space scan.

A :class:`Degradation` holds the scan parameters of :func:`napari_mpi.simulation.layered_scan`;
it simulates the low-resolution volume of a phantom (:meth:`Degradation.apply`), gives the PSF
that deconvolution uses (:meth:`Degradation.psf`) and goes into every enhancement model's card
(:meth:`Degradation.to_dict` / :meth:`Degradation.from_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..grid import Grid
from ..image import MPIImage
from ..simulation.langevin import Particles
from ..simulation.layered import SCAN_MODELS, layered_psf, layered_scan, resolve_scan


@dataclass(frozen=True)
class Degradation:
    """Parameters of a layered x-space scan (the papers' z-blurred 3D MPI volume).

    Parameters
    ----------
    model : {"papers", "trace-free"}
        ``"papers"`` (default): x-y layers at ``gradient``, slice sensitivity from the
        stepping-axis gradient ``z_gradient``, layers every ``z_step``; z is the blurred
        direction. ``"trace-free"``: the ideal FFP magnet (``z_gradient`` = 2 x ``gradient``),
        the behaviour of ``layered_scan`` before the papers' model (:meth:`legacy`).
    gradient : float
        In-plane (x-y) gradient magnitude (T/m). Default 3 T/m, as in the papers.
    z_gradient : float or None
        Stepping-axis gradient magnitude (T/m); None for the model's default (g/2 or 2g).
        Default 1.5 T/m.
    z_step : float or None
        Mechanical pitch between layers (m); None for the model's default (2 mm for
        ``"papers"``, one layer per voxel for ``"trace-free"``). Default 2 mm.
    particle_diameter : float
        Magnetic core diameter of the tracer (m). Default 25 nm.
    snr_db : float or None
        Real Gaussian noise at 20 log10(rms(clean) / rms(noise)) dB over the volume; None for
        none. Default 30 dB (the papers add Gaussian noise without giving its level).
    """

    model: str = "papers"
    gradient: float = 3.0
    z_gradient: float | None = 1.5
    z_step: float | None = 2e-3
    particle_diameter: float = 25e-9
    snr_db: float | None = 30.0

    def __post_init__(self) -> None:
        resolve_scan(self.model, self.gradient, self.z_gradient, self.z_step)  # validates
        Particles(diameter=self.particle_diameter)
        if self.snr_db is not None and not np.isfinite(self.snr_db):
            raise ValueError(
                f"Degradation.snr_db must be a finite number of dB or None, got {self.snr_db!r}"
            )
        for name in ("gradient", "z_gradient", "z_step", "particle_diameter", "snr_db"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))

    @classmethod
    def legacy(cls, gradient: float = 3.0, particle_diameter: float = 25e-9) -> Degradation:
        """The pre-papers layered scan: trace-free PSF, one layer per voxel, no noise."""
        return cls("trace-free", gradient, 2 * abs(gradient), None, particle_diameter, None)

    @property
    def particles(self) -> Particles:
        """The tracer, :class:`~napari_mpi.simulation.Particles` of ``particle_diameter``."""
        return Particles(diameter=self.particle_diameter)

    def resolved(self) -> tuple[float, float | None]:
        """The stepping-axis gradient (T/m) and pitch (m, None: one layer per voxel) used."""
        return resolve_scan(self.model, self.gradient, self.z_gradient, self.z_step)

    def without_noise(self) -> Degradation:
        """The same scan without noise (``snr_db=None``)."""
        values = asdict(self)
        values["snr_db"] = None
        return Degradation(**values)

    def apply(self, phantom: MPIImage, seed: int | np.random.Generator | None = 0) -> MPIImage:
        """The degraded volume of ``phantom`` on its grid (:func:`layered_scan`), noise from
        ``seed``. The result's metadata carries ``degradation`` (:meth:`to_dict`)."""
        gz, dz = self.resolved()
        out = layered_scan(
            phantom,
            self.gradient,
            self.particles,
            z_gradient=gz,
            z_step=dz,
            snr=self.snr_db,
            seed=seed,
            model=self.model,
        )
        out.metadata["degradation"] = self.to_dict()
        return out

    def psf(self, grid: Grid | MPIImage) -> np.ndarray:
        """The 3D PSF of this scan on ``grid``'s voxels, (2nz-1, 2ny-1, 2nx-1), sum 1.

        The layer PSF convolved along z with the pitch's interpolation triangle: the point
        response averaged over the point's position between layers
        (:func:`napari_mpi.simulation.layered_psf`). Its centre is at index (nz-1, ny-1, nx-1).
        """
        if isinstance(grid, MPIImage):
            grid = grid.grid
        gz, dz = self.resolved()
        return layered_psf(grid, self.gradient, gz, dz, self.particles)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (SI units; keys as the fields) for a model card."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Degradation:
        """Read :meth:`to_dict` output back; ValueError naming an unknown or bad key."""
        if not isinstance(values, dict):
            raise ValueError(
                f"degradation must be a dict of parameters, got {type(values).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"degradation: unknown key(s) {unknown}; expected some of {sorted(known)}"
            )
        if "model" in values and values["model"] not in SCAN_MODELS:
            raise ValueError(
                f"degradation: model must be one of {list(SCAN_MODELS)}, got {values['model']!r}"
            )
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"degradation: {exc}") from None

    def differences(self, other: Degradation, rtol: float = 1e-6) -> list[str]:
        """Human-readable differences from ``other`` ("z_step: 0.002 != 0.003"); [] if none."""
        out = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            same = a == b or (
                isinstance(a, float) and isinstance(b, float) and np.isclose(a, b, rtol=rtol)
            )
            if not same:
                out.append(f"{f.name}: {a!r} != {b!r}")
        return out

    @classmethod
    def parse(cls, text: str | None) -> Degradation:
        """A degradation from a command-line or widget string.

        Accepted: ``""`` / ``"papers"`` (the default, :class:`Degradation()`), ``"legacy"`` /
        ``"trace-free"`` (:meth:`legacy`), the path of a JSON file (a model's ``card.json``,
        whose degradation is read from ``data``, or a dict of fields), or comma-separated
        ``key=value`` pairs over the papers' defaults, e.g. ``"z_step=3e-3,snr_db=20"``
        (``none`` for None; lengths in m, gradients in T/m). ValueError names what is wrong.
        """
        import json
        from pathlib import Path

        text = "" if text is None else str(text).strip()
        if text.lower() in ("", "papers", "default"):
            return cls()
        if text.lower() in ("legacy", "trace-free"):
            return cls.legacy()
        if "=" not in text:
            path = Path(text)
            if not path.is_file():
                raise ValueError(
                    f"degradation {text!r}: expected 'papers', 'legacy', key=value pairs "
                    "(e.g. z_step=3e-3,snr_db=20) or a JSON file (a model's card.json)"
                )
            try:
                values = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"degradation file {path}: not JSON ({exc})") from None
            found = degradation_in(values)
            if found is None:
                raise ValueError(f"degradation file {path}: no degradation parameters in it")
            return cls.from_dict(found)
        values: dict[str, Any] = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip().replace("-", "_"), value.strip()
            if not sep or not key:
                raise ValueError(f"degradation: expected key=value, got {item.strip()!r}")
            if key == "model":
                values[key] = value
            elif value.lower() == "none":
                values[key] = None
            else:
                try:
                    values[key] = float(value)
                except ValueError:
                    raise ValueError(
                        f"degradation: {key} must be a number or none, got {value!r}"
                    ) from None
        return cls.from_dict(values)

    def describe(self) -> str:
        """One line for logs and cards, in display units."""
        gz, dz = self.resolved()
        step = "every voxel" if dz is None else f"{dz * 1e3:g} mm"
        noise = "no noise" if self.snr_db is None else f"SNR {self.snr_db:g} dB"
        return (
            f"layered scan ({self.model}): {self.gradient:g} T/m in x-y, {gz:g} T/m along z, "
            f"z step {step}, {self.particle_diameter * 1e9:g} nm cores, {noise}"
        )


def degradation_in(values: Any) -> dict | None:
    """The degradation parameters in a JSON object: a dict of :class:`Degradation` fields, a
    ``{"degradation": {...}}`` wrapper, or a model card (``data.train.degradation`` or
    ``data.degradation``); None when there are none."""
    if not isinstance(values, dict):
        return None
    known = {f.name for f in fields(Degradation)}
    if values and set(values) <= known:
        return values
    if isinstance(values.get("degradation"), dict):
        return values["degradation"]
    data = values.get("data")
    if isinstance(data, dict):
        for part in (data.get("train"), data):
            if isinstance(part, dict) and isinstance(part.get("degradation"), dict):
                return part["degradation"]
    return None
