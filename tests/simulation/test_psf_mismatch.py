"""The mismatched x-space PSF of DC_GAN's setting: relaxation makes it asymmetric and wider
along the scan direction, a gradient error widens it, and every bad parameter is named."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.enhance.unpaired import image_grid
from napari_mpi.profiles import fwhm
from napari_mpi.simulation.psf_mismatch import XSpaceBlur, add_noise, relaxation_kernel

GRID = image_grid(61, 12e-3)  # 61 x 61 pixels of ~0.197 mm
PIXEL = float(GRID.voxel_size[2])


def centroid_x(k: np.ndarray) -> float:
    x = (np.arange(k.shape[-1]) - k.shape[-1] // 2) * PIXEL
    return float((k.sum(axis=(0, 1)) * x).sum() / k.sum())


def row_fwhm(k: np.ndarray) -> float:
    i = np.unravel_index(np.argmax(k[0]), k[0].shape)
    return fwhm(k[0][i[0]]) * PIXEL


def test_without_relaxation_or_gradient_error_the_true_psf_is_the_nominal_one():
    blur = XSpaceBlur(relaxation_time=0.0, gradient_error=(0.0, 0.0))
    np.testing.assert_allclose(blur.true_psf(GRID), blur.nominal_psf(GRID), atol=1e-12)
    k = blur.nominal_psf(GRID)
    assert k.shape == (1, 121, 121) and k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k[..., ::-1], atol=1e-12)  # symmetric in x


def test_relaxation_shifts_the_psf_along_the_scan_direction_by_v_tau():
    blur = XSpaceBlur(relaxation_time=1e-6, gradient_error=(0.0, 0.0))
    assert blur.relaxation_length == pytest.approx(2 * np.pi * 25e3 * 20e-3 / 2.0 * 1e-6)
    k = blur.true_psf(GRID)
    # the Langevin part is centred; the exponential tail moves the centroid towards +x by
    # v tau, less what the heavy 1/r Langevin tails lose past the kernel's right edge
    assert 0.4 * blur.relaxation_length < centroid_x(k) < blur.relaxation_length
    assert centroid_x(blur.nominal_psf(GRID)) == pytest.approx(0.0, abs=1e-9)
    assert not np.allclose(k, k[..., ::-1], atol=1e-6)  # asymmetric
    assert row_fwhm(k) > 1.15 * row_fwhm(blur.nominal_psf(GRID))


def test_a_weaker_x_gradient_widens_the_psf_along_x_only_by_about_its_ratio():
    nominal = XSpaceBlur(relaxation_time=0.0, gradient_error=(0.0, 0.0)).nominal_psf(GRID)
    weak = XSpaceBlur(relaxation_time=0.0, gradient_error=(-0.2, 0.0)).true_psf(GRID)
    wx = fwhm(weak[0, 60]) / fwhm(nominal[0, 60])
    wy = fwhm(weak[0, :, 60]) / fwhm(nominal[0, :, 60])
    assert 1.15 < wx < 1.3  # 1 / 0.8 = 1.25 for a 1D PSF
    assert wy == pytest.approx(1.0, abs=0.03)


def test_the_relaxation_kernel_is_one_sided_normalised_and_has_mean_length():
    r = relaxation_kernel(1e-3, 1e-5, 2001)
    assert r.sum() == pytest.approx(1.0) and np.all(r[:1000] == 0)
    s = (np.arange(2001) - 1000) * 1e-5
    assert float((r * s).sum()) == pytest.approx(1e-3, rel=1e-2)
    assert relaxation_kernel(0.0, 1e-4, 5).tolist() == [0, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="odd"):
        relaxation_kernel(1e-3, 1e-4, 4)


def test_native_images_have_the_requested_snr_and_are_reproducible():
    blur = XSpaceBlur(snr_db=20.0)
    phantom = np.zeros((61, 61))
    phantom[20:40, 25:35] = 1
    a = blur.native(phantom, GRID, np.random.default_rng(3))
    b = blur.native(phantom, GRID, np.random.default_rng(3))
    clean = XSpaceBlur(snr_db=None).native(phantom, GRID)
    np.testing.assert_array_equal(a, b)
    snr = 20 * np.log10(np.sqrt(np.mean(clean**2)) / np.sqrt(np.mean((a - clean) ** 2)))
    assert snr == pytest.approx(20.0, abs=0.5)
    assert add_noise(np.zeros((4, 4)), 10.0, np.random.default_rng(0)).max() == 0
    with pytest.raises(ValueError, match="does not match the grid"):
        blur.native(np.zeros((10, 10)), GRID)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gradient": 0}, "gradient"),
        ({"relaxation_time": -1e-6}, "relaxation_time"),
        ({"gradient_error": (-1.0, 0.0)}, "gradient_error"),
        ({"gradient_error": (0.1,)}, "gradient_error"),
        ({"drive_amplitude": float("nan")}, "drive_amplitude"),
        ({"particle_diameter": 1.0}, "particle_diameter"),
        ({"snr_db": float("inf")}, "snr_db"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, field):
    with pytest.raises(ValueError, match=f"XSpaceBlur.{field}"):
        XSpaceBlur(**kwargs)


def test_parse_and_cards_round_trip():
    blur = XSpaceBlur.parse("relaxation_time=2e-6,gradient_error=-0.1:0.05,snr_db=none")
    assert blur.relaxation_time == 2e-6 and blur.gradient_error == (-0.1, 0.05)
    assert blur.snr_db is None
    assert XSpaceBlur.parse(blur.to_dict()) == blur
    assert XSpaceBlur.parse('{"gradient": 3.0}').gradient == 3.0
    assert XSpaceBlur.parse("default") == XSpaceBlur()
    assert blur.differences(XSpaceBlur()) and not blur.differences(blur)
    with pytest.raises(ValueError, match="unknown parameters"):
        XSpaceBlur.parse("tau=1")
    with pytest.raises(ValueError, match="not a number"):
        XSpaceBlur.parse("gradient=fast")
    with pytest.raises(ValueError, match="2D grid"):
        XSpaceBlur().nominal_psf(image_grid(1))
