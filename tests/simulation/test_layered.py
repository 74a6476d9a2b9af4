"""The layered (z-stepped) x-space scan: the papers' z blur, the legacy model, noise, errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.grid import Grid
from napari_mpi.image import MPIImage
from napari_mpi.profiles import fwhm
from napari_mpi.simulation import Particles, layered_psf, layered_scan, native_image
from napari_mpi.simulation.layered import layer_positions
from napari_mpi.simulation.phantoms import vessel_phantom

N = 33
GRID = Grid((N, N, N), (N * 1e-3,) * 3, (0.0, 0.0, 0.0))  # 1 mm voxels


def point(index=(16, 16, 16), grid=GRID) -> MPIImage:
    data = np.zeros(grid.shape)
    data[index] = 1.0
    return MPIImage(data, grid.fov, grid.center)


def fwhm_xyz(volume: np.ndarray, voxel: np.ndarray) -> tuple[float, float, float]:
    """FWHM (m) along x, y and z through the maximum of a (z, y, x) volume."""
    v = volume[0] if volume.ndim == 4 else volume
    z, y, x = np.unravel_index(np.argmax(v), v.shape)
    return (
        fwhm(v[z, y, :], voxel[2]),
        fwhm(v[z, :, x], voxel[1]),
        fwhm(v[:, y, x], voxel[0]),
    )


@pytest.mark.parametrize("index", [(16, 16, 16), (17, 16, 16)])  # on a layer, between two
def test_papers_scan_blurs_z_at_least_twice_x_and_y(index):
    scan = layered_scan(point(index))
    fx, fy, fz = fwhm_xyz(scan.data, GRID.voxel_size)
    assert fx == pytest.approx(fy, rel=1e-6)
    assert 1.5e-3 < fx < 3e-3
    assert fz >= 2 * fx and fz >= 2 * fy
    assert scan.metadata["scan_model"] == "papers" and scan.metadata["layers"] == 17


def test_trace_free_model_is_the_earlier_scan_with_z_sharper():
    phantom = vessel_phantom(Grid((12, 16, 16), (12e-3, 16e-3, 16e-3), (0, 0, 0)), seed=3)
    legacy = layered_scan(phantom, 3.0, model="trace-free")
    before = native_image(phantom, (3.0, 3.0, -6.0), channels=(0, 1))
    np.testing.assert_allclose(legacy.data, before.data, rtol=1e-5, atol=1e-9)
    fx, fy, fz = fwhm_xyz(layered_scan(point(), model="trace-free").data, GRID.voxel_size)
    assert fz < fx and fx == pytest.approx(fy)


def test_z_blur_follows_the_stepping_gradient_and_the_step():
    widths = [
        fwhm_xyz(layered_scan(point(), z_gradient=gz, z_step=1e-3).data, GRID.voxel_size)[2]
        for gz in (3.0, 1.5)
    ]
    assert widths[1] == pytest.approx(2 * widths[0], rel=0.1)  # normal part: FWHM ~ 1 / g_z
    coarse = layered_scan(point((17, 16, 16)), z_gradient=3.0, z_step=4e-3)
    assert fwhm_xyz(coarse.data, GRID.voxel_size)[2] > widths[0] * 1.2
    small = layered_scan(point(), particles=Particles(diameter=20e-9))
    assert (
        fwhm_xyz(small.data, GRID.voxel_size)[0]
        > fwhm_xyz(layered_scan(point()).data, GRID.voxel_size)[0]
    )


def test_layers_at_a_pitch_that_is_not_a_voxel_multiple():
    grid = Grid((16, 16, 16), (12e-3, 12e-3, 12e-3), (0, 0, 0))  # 0.75 mm voxels, 2 mm pitch
    pos = layer_positions(grid, 2e-3)
    assert pos[0] == 0 and pos[-1] >= 15 and np.allclose(np.diff(pos), 2 / 0.75)
    phantom = vessel_phantom(grid, seed=1)
    scan = layered_scan(phantom)
    assert scan.grid.same_as(phantom.grid) and np.all(np.isfinite(scan.data))
    # kernel sum 1: only what the heavy L(xi)/xi tail carries out of the FOV is lost
    assert 0.1 < scan.data.sum() / phantom.data.sum() <= 1.0 + 1e-6


def test_noise_at_the_requested_snr_is_seeded():
    phantom = vessel_phantom(Grid((16, 16, 16), (16e-3,) * 3, (0, 0, 0)), seed=2)
    clean = layered_scan(phantom)
    noisy = layered_scan(phantom, snr=20.0, seed=5)
    again = layered_scan(phantom, snr=20.0, seed=5)
    np.testing.assert_array_equal(noisy.data, again.data)
    err = noisy.data - clean.data
    snr = 20 * np.log10(np.sqrt(np.mean(clean.data**2)) / np.sqrt(np.mean(err**2)))
    assert snr == pytest.approx(20.0, abs=0.5)
    assert not np.array_equal(noisy.data, layered_scan(phantom, snr=20.0, seed=6).data)


def test_psf_has_the_scans_anisotropy_and_sums_to_one():
    kernel = layered_psf(GRID, 3.0, 1.5, 2e-3)
    assert kernel.shape == (2 * N - 1,) * 3 and kernel.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(kernel), kernel.shape) == (N - 1, N - 1, N - 1)
    fx, fy, fz = fwhm_xyz(kernel, GRID.voxel_size)
    assert fz >= 2 * fx and fx == pytest.approx(fy)
    legacy = layered_psf(GRID, 3.0, 6.0, None)
    assert fwhm_xyz(legacy, GRID.voxel_size)[2] < fx


def test_a_single_layer_and_several_frames():
    grid = Grid((1, 16, 16), (1e-3, 16e-3, 16e-3), (0, 0, 0))
    data = np.zeros((2, 1, 16, 16))
    data[:, 0, 8, 8] = [1.0, 2.0]
    out = layered_scan(MPIImage(data, grid.fov, grid.center))
    assert out.data.shape == (2, 1, 16, 16) and out.metadata["layers"] == 1
    np.testing.assert_allclose(out.data[1], 2 * out.data[0], rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "fancy"}, "model"),
        ({"z_step": -1e-3}, "z_step"),
        ({"z_gradient": 0.0}, "z_gradient"),
        ({"gradient": float("nan")}, "gradient"),
        ({"model": "trace-free", "z_gradient": 1.0}, "trace-free"),
    ],
)
def test_bad_scan_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layered_scan(point(), **kwargs)
