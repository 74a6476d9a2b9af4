"""Simulated measurements: u = S c plus noise at a requested SNR, written as MDF."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from ..acquisition import Acquisition
from ..image import MPIImage
from ..io import write_measurement
from ..progress import Progress, run
from ..resample import resample
from ..system_matrix import SystemMatrix
from .langevin import Particles
from .noise import add_noise, complex_noise
from .scanner import Scanner
from .system_matrix import iter_phantom_signal


@dataclass(eq=False)
class SimulatedMeasurement:
    """A simulated measurement aligned row for row with a system matrix.

    Attributes
    ----------
    data : ndarray, shape (frames, rows), complex64
        Noisy spectra.
    clean : ndarray, shape (rows,), complex128
        The noiseless spectrum.
    background : ndarray, shape (background_frames, rows), complex64, or None
        Empty-scanner frames (noise only).
    phantom : MPIImage
        The phantom resampled onto the system matrix's grid (the reconstruction target).
    snr_db : float
        Requested SNR, 20 log10(rms(clean) / rms(noise)) over the rows (dB).
    noise_std : float
        Noise RMS per complex entry (V).
    system_matrix : SystemMatrix
        The calibration whose rows the data follow.
    """

    data: np.ndarray
    clean: np.ndarray
    background: np.ndarray | None
    phantom: MPIImage
    snr_db: float
    noise_std: float
    system_matrix: SystemMatrix
    metadata: dict = field(default_factory=dict)


def scanner_from_acquisition(acq: Acquisition, name: str = "from calibration") -> Scanner:
    """A scanner with the drive field and gradient of an acquisition (one coil per axis)."""
    gradient = acq.gradient if acq.gradient is not None else np.array([-1.0, -1.0, 2.0])
    return Scanner(
        base_frequency=acq.base_frequency,
        dividers=tuple(int(d) for d in acq.dividers),
        drive_amplitude=tuple(float(a) for a in acq.drive_strength),
        gradient=tuple(float(g) for g in gradient),
        drive_phase=tuple(float(p) for p in acq.drive_phase),
        num_sampling_points=acq.num_sampling_points,
        receive_sensitivity=np.eye(3)[: acq.num_receive_channels],
        name=name,
    )


def iter_measurement(
    system_matrix: SystemMatrix,
    phantom: MPIImage,
    snr_db: float | None,
    *,
    frames: int = 1,
    background_frames: int = 0,
    seed: int | None = 0,
    simulate_on_phantom_grid: bool = False,
    scanner: Scanner | None = None,
    particles: Particles | None = None,
) -> Generator[Progress, None, SimulatedMeasurement]:
    """Simulate ``frames`` noisy measurements of ``phantom`` for ``system_matrix``'s rows.

    Parameters
    ----------
    system_matrix : SystemMatrix
        Calibration to simulate for; the data follow its rows.
    phantom : MPIImage
        Concentration (mmol(Fe)/L) on any grid.
    snr_db : float or None
        SNR over the used rows, 20 log10(rms(clean) / rms(noise)); None for no noise.
    frames, background_frames : int
        Noisy frames of the phantom, and noise-only frames.
    simulate_on_phantom_grid : bool
        Compute the clean signal from the phantom on its own (finer) grid with the physics
        model, instead of ``S c`` on the calibration grid: avoids the inverse crime. Needs the
        ``scanner`` (default: derived from the calibration's acquisition).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if background_frames < 0:
        raise ValueError(f"background_frames must be >= 0, got {background_frames}")
    if np.any(~np.isfinite(phantom.data)):
        raise ValueError("phantom contains NaN or infinite values")
    sm = system_matrix
    target = resample(phantom, sm.grid)
    if simulate_on_phantom_grid:
        if scanner is None:
            if sm.acquisition is None:
                raise ValueError("simulate_on_phantom_grid needs a scanner or an acquisition")
            scanner = scanner_from_acquisition(sm.acquisition)
        spectra = yield from iter_phantom_signal(scanner, phantom, particles)
        clean = spectra[sm.channels, sm.frequency_indices]
    else:
        yield Progress(0, 1, "computing S c")
        clean = sm.matrix.astype(np.complex128) @ target.data[0].reshape(-1).astype(np.float64)
        yield Progress(1, 1, "computing S c")
    rng = np.random.default_rng(seed)
    if snr_db is None:
        data, std = np.tile(clean, (frames, 1)), 0.0
    else:
        data, std = add_noise(clean, snr_db, rng, frames=frames)
    background = None
    if background_frames:
        background = complex_noise((background_frames, clean.size), std, rng).astype(np.complex64)
    return SimulatedMeasurement(
        data=data.astype(np.complex64),
        clean=clean,
        background=background,
        phantom=target,
        snr_db=float("inf") if snr_db is None else float(snr_db),
        noise_std=std,
        system_matrix=sm,
        metadata={"phantom": dict(phantom.metadata), "seed": seed},
    )


def simulate_measurement(system_matrix, phantom, snr_db, **kwargs) -> SimulatedMeasurement:
    """Simulate a measurement (see :func:`iter_measurement` for the parameters)."""
    return run(iter_measurement(system_matrix, phantom, snr_db, **kwargs))


def write_simulated_measurement(
    path: str | PathLike, measurement: SimulatedMeasurement, overwrite: bool = False
) -> Path:
    """Write a simulated measurement as an MDF 2.1 measurement (background frames first)."""
    sm = measurement.system_matrix
    acq = sm.acquisition
    if acq is None:
        raise ValueError("the system matrix has no acquisition: cannot describe the measurement")
    channels = np.unique(sm.channels)
    bins = np.unique(sm.frequency_indices)
    if (
        sm.num_rows != channels.size * bins.size
        or channels.size != acq.num_receive_channels
        or np.any(sm.periods)
    ):
        raise ValueError(
            "an MDF measurement stores every receive channel at one list of frequencies; this "
            "system matrix keeps other rows per channel (or drops channels): simulate with a "
            "matrix that keeps all channels and no per-channel SNR selection"
        )
    frames = measurement.data
    is_bg = np.zeros(frames.shape[0], dtype=bool)
    if measurement.background is not None:
        frames = np.concatenate([measurement.background, frames])
        is_bg = np.concatenate([np.ones(measurement.background.shape[0], bool), is_bg])
    data = np.zeros((frames.shape[0], acq.num_receive_channels, bins.size), dtype=np.complex64)
    data[:, sm.channels, np.searchsorted(bins, sm.frequency_indices)] = frames
    selection = None if bins.size == acq.num_frequencies else bins
    return write_measurement(
        path,
        data,
        acq,
        frequency_indices=selection,
        is_background_frame=is_bg,
        overwrite=overwrite,
        metadata={"experiment": {"name": "napari-mpi simulation", "isSimulation": True}},
    )
