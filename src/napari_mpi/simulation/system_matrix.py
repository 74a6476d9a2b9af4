"""Model-based system matrices: a delta sample at every voxel of a grid."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..grid import Grid
from ..system_matrix import SystemMatrix
from .langevin import Particles
from .scanner import Scanner


def iter_system_matrix(
    scanner: Scanner,
    grid: Grid,
    particles: Particles | None = None,
    subvoxels: int = 1,
    chunk_voxels: int = 256,
) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """Simulate a system matrix chunk by chunk, yielding progress.

    Yields ``(done_voxels, total_voxels, None)`` after each chunk and finally
    ``(total, total, spectra)`` with spectra of shape (C, L, voxels), complex128: the rfft of the
    induced signal u_c(t) = -d/dt (s_c . m(r, t)) for one particle per voxel, averaged over
    ``subvoxels`` points per axis inside each voxel (a delta sample has a size).
    """
    particles = particles or Particles()
    if subvoxels < 1:
        raise ValueError(f"subvoxels must be >= 1, got {subvoxels}")
    t = scanner.times
    drive = scanner.drive_field(t)  # (V, 3)
    grad = np.asarray(scanner.gradient, dtype=np.float64)
    sens = scanner.receive_sensitivity  # (C, 3)
    v = t.size
    freqs = np.fft.rfftfreq(v, d=scanner.cycle / v)
    derivative = -2j * np.pi * freqs  # u = -dm/dt, exact for the sampled periodic signal
    # voxel centres (x, y, z), and sub-voxel offsets
    zz, yy, xx = np.meshgrid(*(grid.coordinates(a) for a in range(3)), indexing="ij")
    centres = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    vs = grid.voxel_size[::-1]  # (x, y, z)
    off1 = (np.arange(subvoxels) + 0.5) / subvoxels - 0.5
    offsets = np.stack(np.meshgrid(off1, off1, off1, indexing="ij"), axis=-1).reshape(-1, 3) * vs
    offsets = np.unique(np.where(grid.fov[::-1] > 0, offsets, 0.0), axis=0)
    total = centres.shape[0]
    out = np.empty((sens.shape[0], freqs.size, total), dtype=np.complex128)
    for start in range(0, total, chunk_voxels):
        stop = min(start + chunk_voxels, total)
        acc = np.zeros((stop - start, v, sens.shape[0]))
        for off in offsets:
            pos = centres[start:stop] + off  # (n, 3)
            field = pos[:, np.newaxis, :] * grad + drive[np.newaxis]  # (n, V, 3)
            moment = particles.mean_moment(field)  # (n, V, 3)
            acc += moment @ sens.T
        acc /= len(offsets)
        spectra = np.fft.rfft(acc, axis=1) * derivative[np.newaxis, :, np.newaxis]
        out[:, :, start:stop] = spectra.transpose(2, 1, 0)
        yield stop, total, None
    yield total, total, out


def simulate_system_matrix(
    scanner: Scanner,
    grid: Grid,
    particles: Particles | None = None,
    subvoxels: int = 1,
) -> SystemMatrix:
    """Simulate the full system matrix (every channel and rfft bin) of ``scanner`` on ``grid``.

    Returns
    -------
    SystemMatrix
        Rows ordered channel-major, frequency ascending; entries are the induced-signal spectra
        (V s per particle, unnormalised rfft) of one particle in each voxel.
    """
    spectra = None
    for _, _, result in iter_system_matrix(scanner, grid, particles, subvoxels):
        spectra = result
    c, num_freq, voxels = spectra.shape
    acq = scanner.acquisition()
    channels = np.repeat(np.arange(c), num_freq)
    bins = np.tile(np.arange(num_freq), c)
    return SystemMatrix(
        matrix=spectra.reshape(c * num_freq, voxels),
        channels=channels,
        frequency_indices=bins,
        frequencies=acq.frequencies[bins],
        grid_shape=grid.shape,
        fov=grid.fov,
        center=grid.center,
        acquisition=acq,
        background_corrected=True,
        metadata={"scanner": scanner.name, "simulated": True},
    )
