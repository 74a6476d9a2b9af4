"""The physics checks of the simulator: PSF width, SNR, S c, mixing frequencies, linearity."""

from __future__ import annotations

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.profiles import fwhm
from napari_mpi.simulation import (
    BOLTZMANN,
    Particles,
    get_preset,
    induced_signal,
    langevin,
    langevin_derivative,
    measured_snr_db,
    native_image,
    psf,
    scanner_grid,
    simulate_measurement,
    simulate_phantom_signal,
    simulate_system_matrix,
)
from napari_mpi.simulation.phantoms import make_phantom


def test_langevin_function_and_derivative():
    xi = np.array([-5.0, -1e-4, 0.0, 1e-4, 0.5, 5.0, 50.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.where(xi != 0, 1 / np.tanh(xi) - 1 / xi, 0.0)
    np.testing.assert_allclose(langevin(xi)[np.abs(xi) > 1e-3], exact[np.abs(xi) > 1e-3])
    assert langevin(np.array([0.0]))[0] == 0
    h = 1e-5
    numeric = (langevin(xi + h) - langevin(xi - h)) / (2 * h)
    np.testing.assert_allclose(langevin_derivative(xi), numeric, rtol=1e-5, atol=1e-7)


def test_particle_defaults_and_moment():
    p = Particles()
    ms = 0.6 / (4e-7 * np.pi)
    assert p.moment == pytest.approx(ms * np.pi * (25e-9) ** 3 / 6)
    assert p.beta == pytest.approx(p.moment / (BOLTZMANN * 300))


@pytest.mark.parametrize("gradient", [1.0, 2.5, 5.0])
def test_1d_xspace_psf_fwhm(gradient):
    """FWHM of the 1D x-space PSF = 4.16 kB T / (m G) within 2 % (1.8 mm at 2.5 T/m)."""
    p = Particles()
    expected = 4.16 * BOLTZMANN * p.temperature / (p.moment * gradient)
    x = np.linspace(-10e-3, 10e-3, 40001)
    profile = psf(np.stack([x, 0 * x, 0 * x], -1), (gradient, -gradient / 2, -gradient / 2), p)
    width = fwhm(profile, x[1] - x[0])
    assert width == pytest.approx(expected, rel=0.02)
    if gradient == 2.5:
        assert width == pytest.approx(1.8e-3, rel=0.03)


@pytest.fixture(scope="module")
def sm2d():
    scanner = get_preset("preclinical-2d")
    return scanner, simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)))


@pytest.mark.parametrize("snr", [10.0, 20.0, 30.0, 40.0])
def test_measured_snr_matches_request(sm2d, snr):
    _, sm = sm2d
    phantom = make_phantom("two-points:gap=6,diameter=2", sm.grid)
    meas = simulate_measurement(sm, phantom, snr, frames=4, seed=int(snr))
    for frame in meas.data:
        assert abs(measured_snr_db(meas.clean, frame) - snr) < 0.3


def test_s_times_c_equals_direct_simulation(sm2d):
    scanner, sm = sm2d
    phantom = make_phantom("shape", sm.grid)
    direct = simulate_phantom_signal(scanner, phantom)[sm.channels, sm.frequency_indices]
    su = sm.matrix.astype(np.complex128) @ phantom.data[0].reshape(-1)
    assert np.linalg.norm(su - direct) / np.linalg.norm(direct) < 1e-5


def test_strongest_rows_are_mixing_frequencies(sm2d):
    scanner, sm = sm2d
    energy = np.linalg.norm(sm.matrix, axis=1)
    strongest = np.argsort(energy)[::-1][:20]
    low_order = set(scanner.mixing_bins(6).tolist())
    assert set(sm.frequency_indices[strongest].tolist()) <= low_order
    # and the two strongest are the drive frequencies themselves, one per channel
    f_drive = scanner.drive_frequencies
    top = sm.frequencies[strongest[:2]]
    np.testing.assert_allclose(sorted(top), sorted(f_drive), rtol=1e-9)
    # energy falls with the mixing order: low-order rows carry far more than high-order ones
    low = np.isin(sm.frequency_indices, scanner.mixing_bins(6))
    high = ~np.isin(sm.frequency_indices, scanner.mixing_bins(24))
    assert high.sum() > 100
    assert np.median(energy[low]) > 100 * np.median(energy[high])


def test_signal_and_energy_are_linear_in_concentration(sm2d):
    scanner, sm = sm2d
    base = make_phantom("two-points:gap=6,diameter=2", sm.grid)
    signals, energies = [], []
    for c in (0.5, 1.0, 2.0, 4.0):
        ph = nm.MPIImage(base.data * c, base.fov, base.center)
        u = simulate_phantom_signal(scanner, ph)
        signals.append(u)
        energies.append(native_image(ph, scanner.gradient).data.sum())
    for c, u in zip((0.5, 1.0, 2.0, 4.0), signals, strict=True):
        np.testing.assert_allclose(u, signals[1] * c, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.array(energies) / energies[1], [0.5, 1, 2, 4], rtol=1e-5)


def test_voxel_size_does_not_change_the_signal(sm2d):
    """S c is the same for a phantom on the calibration grid and on a 3x finer grid."""
    scanner, sm = sm2d
    fine = scanner_grid(scanner, (57, 57))
    phantom = make_phantom("two-tubes:gap=3", fine)
    coarse = simulate_measurement(sm, phantom, None)
    direct = simulate_measurement(sm, phantom, None, simulate_on_phantom_grid=True, scanner=scanner)
    rel = np.linalg.norm(coarse.clean - direct.clean) / np.linalg.norm(direct.clean)
    assert rel < 0.15  # the same object seen through grids of different resolution
    assert 0.0 < rel  # ... but not the inverse crime


def test_system_matrix_round_trip_through_mdf(tmp_path, sm2d):
    _, sm = sm2d
    nm.write_mdf(tmp_path / "cal.mdf", sm)
    with nm.read_mdf(tmp_path / "cal.mdf") as f:
        back = f.system_matrix()
        top = f.system_matrix(snr_threshold=100)
    assert np.array_equal(back.matrix, sm.matrix)
    np.testing.assert_allclose(back.snr, sm.snr)
    assert 0 < top.num_rows < sm.num_rows


def test_subvoxel_averaging_and_background(sm2d):
    scanner, _ = sm2d
    grid = scanner_grid(scanner, (7, 7))
    sharp = simulate_system_matrix(scanner, grid)
    smooth = simulate_system_matrix(scanner, grid, subvoxels=3, background_frames=3, add_noise=True)
    assert smooth.num_background_frames == 3
    assert not np.allclose(sharp.matrix, smooth.matrix)
    noise = smooth.background - 0
    assert np.sqrt(np.mean(np.abs(noise) ** 2)) == pytest.approx(
        smooth.metadata["noise_std"], rel=0.2
    )


def test_3d_preset_frequency_selection():
    scanner = get_preset("preclinical-3d")
    assert scanner.cycle == pytest.approx(1 / 46.42, rel=1e-3)  # 46 volumes/s
    grid = scanner_grid(scanner, (3, 3, 2))
    sm = simulate_system_matrix(scanner, grid)
    assert sm.grid_shape == (2, 3, 3)
    assert 2000 < sm.num_rows < 6000  # several thousand rows: mixing order 12
    np.testing.assert_allclose(scanner.fov, [0.024, 0.024, 0.012])


def test_induced_signal_is_minus_the_derivative_of_the_coil_moment(sm2d):
    preset, _ = sm2d
    grid = scanner_grid(preset, (5, 5))
    phantom = make_phantom("two-points:gap=6,diameter=3", grid)
    assert induced_signal(preset, phantom).shape == (2, preset.num_sampling_points)
    # sample 4x finer so both derivatives resolve the sharpest peaks
    scanner = preset.with_changes(num_sampling_points=4 * preset.num_sampling_points)
    u = induced_signal(scanner, phantom)
    # direct: M_x(t) of the occupied voxels, differentiated numerically
    from napari_mpi.simulation.system_matrix import _voxel_centres

    p = Particles()
    t = scanner.times
    conc = phantom.data[0].reshape(-1)
    occ = np.flatnonzero(conc)
    m = p.mean_moment(scanner.field(_voxel_centres(grid)[occ], t))  # (n, V, 3)
    weight = conc[occ] * np.prod(grid.voxel_size) * p.particles_per_mmol_per_litre
    mx = np.einsum("n,nv->v", weight, m[:, :, 0])
    dt = t[1] - t[0]
    # five-point stencil (error O(dt^4)) on the periodic signal
    numeric = -(-np.roll(mx, -2) + 8 * np.roll(mx, -1) - 8 * np.roll(mx, 1) + np.roll(mx, 2)) / (
        12 * dt
    )
    assert np.corrcoef(numeric, u[0])[0, 1] > 0.999
    np.testing.assert_allclose(numeric, u[0], atol=0.01 * np.abs(u[0]).max())
