"""Model-based system matrices and signals: a delta sample at every voxel of a grid.

Units: a system-matrix entry S[k, j] is the rfft coefficient (unnormalised, volts) at bin k of
the signal u_c(t) = -d/dt (s_c . M(t)) induced in receive coil c (sensitivity s_c, 1 T/A by
default) when voxel j holds tracer at 1 mmol(Fe)/L. A phantom in mmol(Fe)/L then gives the
measured spectrum u = S c, whatever the voxel size.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from ..grid import Grid
from ..image import MPIImage
from ..progress import Progress, run
from ..system_matrix import SystemMatrix
from .langevin import Particles
from .scanner import Scanner

#: Working-memory budget for one chunk of voxels (bytes).
CHUNK_BYTES = 96 * 2**20


def scanner_grid(scanner: Scanner, shape_xyz: tuple[int, ...], center=(0.0, 0.0, 0.0)) -> Grid:
    """A grid covering the scanner's drive-field FOV.

    Parameters
    ----------
    shape_xyz : tuple of int
        Voxels along x[, y[, z]] (m); missing axes have one voxel.
    center : tuple of float
        Centre (x, y, z) (m).
    """
    shape = [int(s) for s in shape_xyz] + [1] * (3 - len(shape_xyz))
    if any(s < 1 for s in shape):
        raise ValueError(f"grid sizes must be positive, got {tuple(shape_xyz)}")
    fov = scanner.fov.copy()
    # an undriven axis with several voxels gets the same voxel size as the x axis
    for axis in range(3):
        if fov[axis] == 0 and shape[axis] > 1:
            fov[axis] = fov[0] / shape[0] * shape[axis]
    return Grid(shape[::-1], fov=fov[::-1], center=np.asarray(center, dtype=np.float64)[::-1])


def check_simulation_size(voxels: int, rows: int, background_frames: int = 0) -> None:
    """Refuse, before allocating, a system matrix larger than the memory limit.

    Counts the matrix (complex64), its noise and reshaping copies and the voxel centres; the
    limit is :func:`napari_mpi.io.limits.memory_limit` (settable, see docs/mdf.md).

    Raises
    ------
    ValueError
        Saying how large the simulation would be and how to make it smaller.
    """
    from ..io.limits import over_limit

    need = float(voxels) * (rows * 8.0 * 2 + 48) + float(background_frames) * rows * 8
    message = over_limit(
        need,
        f"simulating a system matrix of {rows} rows x {voxels} voxels",
        "use a smaller grid (--grid), fewer frequencies (--max-frequency, --mixing-order) or "
        "fewer channels",
    )
    if message:
        raise ValueError(message)


def _subvoxel_offsets(grid: Grid, subvoxels: int) -> np.ndarray:
    """Offsets (x, y, z) of the sample points inside a voxel (m), shape (n, 3)."""
    if subvoxels < 1:
        raise ValueError(f"subvoxels must be >= 1, got {subvoxels}")
    frac = (np.arange(subvoxels) + 0.5) / subvoxels - 0.5
    steps = grid.voxel_size[::-1] * (grid.fov[::-1] > 0)  # no spread along zero-extent axes
    axes = [frac * s if s > 0 else np.zeros(1) for s in steps]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _voxel_centres(grid: Grid) -> np.ndarray:
    zz, yy, xx = np.meshgrid(*(grid.coordinates(a) for a in range(3)), indexing="ij")
    return np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)


def _chunk_size(scanner: Scanner) -> int:
    """Voxels per chunk so that one chunk's time signals stay within CHUNK_BYTES."""
    per_voxel = scanner.num_sampling_points * 8 * (3 * 4 + scanner.num_receive_channels * 3)
    return int(max(1, min(4096, CHUNK_BYTES // per_voxel)))


def _select_bins(
    scanner: Scanner,
    bins: np.ndarray | None,
    min_frequency: float | None,
    max_frequency: float | None,
    mixing_order: int | str | None,
) -> np.ndarray:
    freqs = scanner.frequencies
    if bins is not None:
        out = np.unique(np.asarray(bins, dtype=np.int64))
        if out.size == 0 or out.min() < 0 or out.max() >= freqs.size:
            raise ValueError(f"bins must lie in 0..{freqs.size - 1}")
    else:
        order = scanner.mixing_order if mixing_order == "default" else mixing_order
        out = np.arange(freqs.size) if order is None else scanner.mixing_bins(int(order))
    keep = np.ones(out.size, dtype=bool)
    if min_frequency is not None:
        keep &= freqs[out] >= min_frequency
    if max_frequency is not None:
        keep &= freqs[out] <= max_frequency
    out = out[keep]
    if out.size == 0:
        raise ValueError(
            f"the frequency selection (min_frequency={min_frequency}, max_frequency="
            f"{max_frequency}, mixing_order={mixing_order}) leaves no frequencies"
        )
    return out


def voxel_spectra(
    scanner: Scanner,
    positions: np.ndarray,
    particles: Particles,
    bins: np.ndarray,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """Signal spectra of tracer at 1 mmol(Fe)/L and unit volume at each position.

    Parameters
    ----------
    positions : ndarray, shape (n, 3)
        Sample positions (x, y, z) (m).
    bins : ndarray of int
        rfft bins to return.
    offsets : ndarray, shape (s, 3), optional
        Sub-voxel offsets to average over.

    Returns
    -------
    ndarray, shape (n, C, len(bins)), complex128
        Spectra per m^3 of tracer volume (multiply by the voxel volume).
    """
    t = scanner.times
    offsets = np.zeros((1, 3)) if offsets is None else offsets
    sens = scanner.receive_sensitivity
    acc = np.zeros((positions.shape[0], t.size, sens.shape[0]))
    for off in offsets:
        moment = particles.mean_moment(scanner.field(positions + off, t))  # (n, V, 3)
        acc += moment @ sens.T
    acc /= offsets.shape[0]
    spectrum = np.fft.rfft(acc, axis=1)[:, bins, :]  # (n, K, C)
    derivative = -2j * np.pi * scanner.frequencies[bins]  # u = -dm/dt, exact when band-limited
    scale = particles.particles_per_mmol_per_litre
    return (spectrum * (derivative * scale)[np.newaxis, :, np.newaxis]).transpose(0, 2, 1)


def iter_system_matrix(
    scanner: Scanner,
    grid: Grid,
    particles: Particles | None = None,
    *,
    subvoxels: int = 1,
    channels: list[int] | None = None,
    bins: np.ndarray | None = None,
    min_frequency: float | None = None,
    max_frequency: float | None = None,
    mixing_order: int | str | None = "default",
    background_frames: int = 0,
    noise_std: float | None = None,
    add_noise: bool = False,
    seed: int | None = 0,
) -> Generator[Progress, None, SystemMatrix]:
    """Simulate a system matrix voxel chunk by voxel chunk, yielding progress.

    The work is chunked over voxels so memory stays bounded by the selected rows plus one
    chunk of time signals; a 3D scanner's system matrix is built within minutes.

    Parameters
    ----------
    scanner : Scanner
        The scanner (see :data:`PRESETS`).
    grid : Grid
        Voxel grid (z, y, x); see :func:`scanner_grid`.
    particles : Particles, optional
        Tracer model; default Perimag-like 25 nm cores.
    subvoxels : int
        Sample points per axis inside each voxel averaged into its column (a real delta
        sample has a size); 1 samples the voxel centre only.
    channels : list of int, optional
        Receive channels to keep; all by default.
    bins : array of int, optional
        rfft bins to keep; by default every bin, or the scanner's mixing-frequency selection
        (see ``mixing_order``).
    min_frequency, max_frequency : float, optional
        Band to keep (Hz).
    mixing_order : int, None or "default"
        Keep only mixing frequencies of total order up to this; None keeps every bin;
        "default" uses ``scanner.mixing_order``.
    background_frames : int
        Number of empty-scanner frames to simulate (noise at ``noise_std``).
    noise_std : float, optional
        Calibration noise (standard deviation of the complex noise per entry, V). Defaults to
        1e-3 of the strongest row's RMS (60 dB dynamic range). Sets ``SystemMatrix.snr``.
    add_noise : bool
        Add that noise to the matrix entries too (a noisy, measured-like calibration).
    seed : int, optional
        Seed of the noise.

    Returns
    -------
    SystemMatrix
        Rows channel-major, frequency ascending.
    """
    particles = particles or Particles()
    sel = _select_bins(scanner, bins, min_frequency, max_frequency, mixing_order)
    all_channels = np.arange(scanner.num_receive_channels)
    chans = all_channels if channels is None else np.unique(np.asarray(channels, dtype=int))
    if chans.size == 0 or chans.min() < 0 or chans.max() >= scanner.num_receive_channels:
        raise ValueError(
            f"channels must lie in 0..{scanner.num_receive_channels - 1}, got {channels}"
        )
    if background_frames < 0:
        raise ValueError(f"background_frames must be >= 0, got {background_frames}")
    check_simulation_size(grid.num_voxels, chans.size * sel.size, background_frames)
    centres = _voxel_centres(grid)
    offsets = _subvoxel_offsets(grid, subvoxels)
    voxel_volume = float(np.prod(grid.voxel_size))
    total = centres.shape[0]
    matrix = np.empty((chans.size, sel.size, total), dtype=np.complex64)
    chunk = _chunk_size(scanner)
    yield Progress(0, total, "simulating system matrix")
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        spectra = voxel_spectra(scanner, centres[start:stop], particles, sel, offsets)
        matrix[:, :, start:stop] = (spectra[:, chans] * voxel_volume).transpose(1, 2, 0)
        yield Progress(stop, total, "simulating system matrix")
    matrix = matrix.reshape(chans.size * sel.size, total)
    rms = np.sqrt(np.mean(np.abs(matrix) ** 2, axis=1))
    if noise_std is None:
        noise_std = 1e-3 * float(rms.max())
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    rng = np.random.default_rng(seed)

    def noise(shape) -> np.ndarray:
        z = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        return (z * (noise_std / np.sqrt(2))).astype(np.complex64)

    if add_noise and noise_std > 0:
        matrix += noise(matrix.shape)
    background = noise((background_frames, matrix.shape[0])) if background_frames else None
    with np.errstate(divide="ignore"):
        snr = np.where(noise_std > 0, rms / max(noise_std, 1e-300), np.inf)
    acq = scanner.acquisition()
    row_channels = np.repeat(chans, sel.size)
    row_bins = np.tile(sel, chans.size)
    return SystemMatrix(
        matrix=matrix,
        channels=row_channels,
        frequency_indices=row_bins,
        frequencies=acq.frequencies[row_bins],
        grid_shape=grid.shape,
        fov=grid.fov,
        center=grid.center,
        snr=snr,
        acquisition=acq,
        background=background,
        background_corrected=True,
        metadata={
            "scanner": scanner.name,
            "simulated": True,
            "subvoxels": subvoxels,
            "noise_std": float(noise_std),
            "particles": {
                "diameter": particles.diameter,
                "saturation_magnetisation": particles.saturation_magnetisation,
                "temperature": particles.temperature,
            },
        },
    )


def simulate_system_matrix(scanner: Scanner, grid: Grid, particles=None, **kwargs) -> SystemMatrix:
    """Simulate a system matrix (see :func:`iter_system_matrix` for the parameters)."""
    return run(iter_system_matrix(scanner, grid, particles, **kwargs))


def iter_phantom_signal(
    scanner: Scanner,
    phantom: MPIImage,
    particles: Particles | None = None,
    *,
    frame: int = 0,
    subvoxels: int = 1,
) -> Generator[Progress, None, np.ndarray]:
    """Simulate the noiseless spectra of a phantom directly (no system matrix kept).

    Voxels of zero concentration are skipped, so a fine phantom grid costs only its occupied
    voxels. Returns spectra of shape (C, L), complex128, for every receive channel and bin.
    """
    particles = particles or Particles()
    conc = phantom.data[frame].reshape(-1).astype(np.float64)
    occupied = np.flatnonzero(conc)
    centres = _voxel_centres(phantom.grid)[occupied]
    offsets = _subvoxel_offsets(phantom.grid, subvoxels)
    bins = np.arange(scanner.num_sampling_points // 2 + 1)
    volume = float(np.prod(phantom.voxel_size))
    out = np.zeros((scanner.num_receive_channels, bins.size), dtype=np.complex128)
    chunk = _chunk_size(scanner)
    yield Progress(0, occupied.size, "simulating phantom signal")
    for start in range(0, occupied.size, chunk):
        stop = min(start + chunk, occupied.size)
        spectra = voxel_spectra(scanner, centres[start:stop], particles, bins, offsets)
        out += np.einsum("n,nck->ck", conc[occupied[start:stop]] * volume, spectra)
        yield Progress(stop, occupied.size, "simulating phantom signal")
    return out


def simulate_phantom_signal(
    scanner: Scanner, phantom: MPIImage, particles=None, **kw
) -> np.ndarray:
    """Noiseless spectra (C, L) of a phantom (see :func:`iter_phantom_signal`)."""
    return run(iter_phantom_signal(scanner, phantom, particles, **kw))


def induced_signal(scanner: Scanner, phantom: MPIImage, particles=None, **kw) -> np.ndarray:
    """Noiseless induced voltage u_c(t) of a phantom over one cycle, shape (C, V) (V).

    The time-domain view of :func:`simulate_phantom_signal` (same unnormalised rfft convention).
    """
    spectra = simulate_phantom_signal(scanner, phantom, particles, **kw)
    return np.fft.irfft(spectra, n=scanner.num_sampling_points, axis=1)
