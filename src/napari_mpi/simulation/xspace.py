"""x-space imaging: the multidimensional PSF, native images, gridded scans and the narrowband
harmonic PSF (layered 3D scans: :mod:`napari_mpi.simulation.layered`).

The x-space PSF of receive channel c for an ideal FFP scan is (Goodwill & Conolly 2011)

    h_c(r) = L'(xi) (e_c . n)^2 + L(xi)/xi (1 - (e_c . n)^2),   xi = beta |G r|,  n = G r / |G r|

with a tangential part from L' (changes of the field magnitude) and a normal part from L(xi)/xi
(changes of its direction). Its 1D FWHM is 4.16 kB T / (m G).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from ..grid import Grid
from ..image import MPIImage
from .langevin import Particles, langevin_derivative, langevin_over_xi
from .scanner import Scanner
from .system_matrix import simulate_phantom_signal


def psf(
    offsets: np.ndarray,
    gradient: tuple[float, float, float],
    particles: Particles | None = None,
    channels: tuple[int, ...] = (0,),
) -> np.ndarray:
    """The x-space PSF summed over receive channel axes, at offsets (..., 3) (m), (x, y, z).

    Returns values (shape offsets.shape[:-1]) with value len(channels)/3 at the origin.
    """
    particles = particles or Particles()
    g = np.asarray(gradient, dtype=np.float64)
    field = np.asarray(offsets, dtype=np.float64) * g
    norm = np.linalg.norm(field, axis=-1)
    xi = particles.beta * norm
    tangential, normal = langevin_derivative(xi), langevin_over_xi(xi)
    out = np.zeros(norm.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in channels:
            cos2 = np.where(norm > 0, (field[..., c] / norm) ** 2, 1.0)
            out += tangential * cos2 + normal * (1 - cos2)
    return out


def _kernel_offsets(grid: Grid) -> np.ndarray:
    """Offsets (x, y, z) (m) of a (2n-1)-per-axis kernel on the grid's voxel spacing."""
    spacing = grid.voxel_size  # (z, y, x)
    axes = [
        (np.arange(2 * n - 1) - (n - 1)) * (spacing[a] if grid.fov[a] > 0 else 0.0)
        for a, n in enumerate(grid.shape)
    ]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    return np.stack([xx, yy, zz], axis=-1)


def psf_kernel(
    grid: Grid,
    gradient: tuple[float, float, float],
    particles: Particles | None = None,
    channels: tuple[int, ...] = (0, 1),
) -> np.ndarray:
    """The PSF sampled on ``grid``'s voxel spacing, size 2n-1 per axis, normalised to sum 1."""
    values = psf(_kernel_offsets(grid), gradient, particles, channels)
    return values / values.sum()


def native_image(
    phantom: MPIImage,
    gradient: tuple[float, float, float] = (-1.0, -1.0, 2.0),
    particles: Particles | None = None,
    channels: tuple[int, ...] = (0, 1),
) -> MPIImage:
    """The x-space native image: the phantom convolved with the PSF (sum 1), same grid."""
    kernel = psf_kernel(phantom.grid, gradient, particles, channels)
    frames = [fftconvolve(f.astype(np.float64), kernel, mode="same") for f in phantom.data]
    data = np.clip(np.stack(frames), 0, None)
    meta = {"method": "x-space native image", "gradient_t_per_m": list(gradient)}
    return MPIImage(data.astype(np.float32), phantom.fov, phantom.center, metadata=meta)


def gridded_scan(
    scanner: Scanner,
    phantom: MPIImage,
    grid: Grid | None = None,
    particles: Particles | None = None,
    upsample: int = 16,
    min_speed: float = 0.1,
) -> MPIImage:
    """Native image from a simulated scan by velocity-compensated gridding.

    The phantom's signal is simulated over one cycle (upsampled ``upsample`` times, exact for
    the band-limited signal). With one receive coil per driven axis the signal vector is
    u(t) = J(t) G v(t), J being the phantom-weighted Jacobian of the mean moment and v the FFP
    velocity, so the velocity-compensated value u . (G v) / |G v|^2 is the PSF-blurred
    concentration seen along the direction of motion (x-space, multidimensional form).
    Samples where |G v| is below ``min_speed`` of its maximum are dropped; the rest are
    averaged into the voxels of ``grid`` at the FFP position. Voxels between trajectory lines
    (a grid finer than the trajectory) take the mean of their reached neighbours.
    """
    grid = grid or phantom.grid
    spectra = simulate_phantom_signal(scanner, phantom, particles)  # (C, L)
    v = scanner.num_sampling_points * upsample
    signal = np.fft.irfft(spectra, n=v, axis=1) * upsample  # (C, v)
    t = np.arange(v) * scanner.cycle / v
    ffp = scanner.ffp(t)  # (v, 3)
    velocity = np.gradient(ffp, t, axis=0)
    g_v = velocity * np.asarray(scanner.gradient, dtype=np.float64)  # (v, 3), field rate
    # signal vector along x, y, z from the receive coils (least squares for general coils)
    u_vec = np.linalg.lstsq(scanner.receive_sensitivity, signal, rcond=None)[0].T  # (v, 3)
    received = np.any(scanner.receive_sensitivity != 0, axis=0)
    g_v = g_v * received
    speed2 = np.einsum("ti,ti->t", g_v, g_v)
    values = np.einsum("ti,ti->t", u_vec, g_v) / np.where(speed2 > 0, speed2, 1.0)
    origin = grid.center - grid.fov / 2  # (z, y, x)
    idx = []
    for a in range(3):
        if grid.fov[a] > 0:
            idx.append(np.floor((ffp[:, 2 - a] - origin[a]) / grid.voxel_size[a]).astype(int))
        else:
            idx.append(np.zeros(v, dtype=int))
    ok = np.all([(i >= 0) & (i < n) for i, n in zip(idx, grid.shape, strict=True)], axis=0)
    ok &= speed2 > (min_speed**2) * speed2.max()
    flat = np.ravel_multi_index([i[ok] for i in idx], grid.shape)
    total = np.bincount(flat, values[ok], minlength=grid.num_voxels)
    count = np.bincount(flat, minlength=grid.num_voxels)
    image = np.where(count > 0, total / np.maximum(count, 1), 0.0).reshape(grid.shape)
    image = _fill_holes(image, count.reshape(grid.shape) > 0)
    meta = {"method": "x-space gridded scan", "scanner": scanner.name}
    data = np.clip(image, 0, None)[np.newaxis].astype(np.float32)
    return MPIImage(data, grid.fov, grid.center, metadata=meta)


def _fill_holes(image: np.ndarray, reached: np.ndarray, max_rounds: int = 8) -> np.ndarray:
    """Give unreached voxels the mean of their reached 3x3(x3) neighbours, growing inwards."""
    from scipy.ndimage import uniform_filter

    image, reached = image.copy(), reached.copy()
    for _ in range(max_rounds):
        if reached.all():
            break
        total = uniform_filter(np.where(reached, image, 0.0), size=3, mode="constant")
        count = uniform_filter(reached.astype(float), size=3, mode="constant")
        grow = ~reached & (count > 0)
        image[grow] = total[grow] / count[grow]
        reached |= grow
    return image


def harmonic_psf(
    offsets: np.ndarray,
    drive_amplitude: float,
    gradient: tuple[float, float, float],
    particles: Particles | None = None,
    harmonic: int = 3,
    drive_axis: int = 0,
    samples: int = 64,
) -> np.ndarray:
    """Narrowband PSF: amplitude of one harmonic of a point sample's signal vs. its offset.

    A sinusoidal drive of ``drive_amplitude`` (T) along ``drive_axis`` sweeps the FFP; the
    sample at ``offsets`` (..., 3) (m) from the FFP centre induces u(t) = -d/dt m(t) in the
    coil along the drive axis. Returns |U_harmonic| (a.u., per particle), shape offsets.shape[:-1].
    """
    particles = particles or Particles()
    if harmonic < 1:
        raise ValueError(f"harmonic must be >= 1, got {harmonic}")
    if samples < 2 * harmonic + 2:
        raise ValueError(f"samples must exceed 2 * harmonic + 1, got {samples}")
    pts = np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
    phase = 2 * np.pi * np.arange(samples) / samples
    drive = np.zeros((samples, 3))
    drive[:, drive_axis] = drive_amplitude * np.sin(phase)
    field = pts[:, None, :] * np.asarray(gradient, dtype=np.float64) + drive[None]
    m = particles.mean_moment(field)[..., drive_axis]  # (n, samples)
    spectrum = np.fft.rfft(m, axis=1)[:, harmonic] * harmonic  # derivative scales with order
    return np.abs(spectrum).reshape(np.asarray(offsets).shape[:-1])


def narrowband_image(
    phantom: MPIImage,
    drive_amplitude: float = 0.012,
    gradient: tuple[float, float, float] = (-1.0, -1.0, 2.0),
    particles: Particles | None = None,
    harmonic: int = 3,
) -> MPIImage:
    """Narrowband image u_3(r) = h(r) * PSF_3rd(r): the phantom convolved with the harmonic
    PSF (eq. 1 of the cascaded-network paper), normalised so the kernel sums to 1."""
    offsets = _kernel_offsets(phantom.grid)
    kernel = harmonic_psf(offsets, drive_amplitude, gradient, particles, harmonic)
    kernel /= kernel.sum()
    frames = [fftconvolve(f.astype(np.float64), kernel, mode="same") for f in phantom.data]
    meta = {"method": f"narrowband harmonic {harmonic}", "drive_amplitude_t": drive_amplitude}
    data = np.clip(np.stack(frames), 0, None).astype(np.float32)
    return MPIImage(data, phantom.fov, phantom.center, metadata=meta)
