"""Richardson-Lucy and Wiener deconvolution of 3D images with the scan's PSF."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from napari_mpi import metrics
from napari_mpi.enhance import Degradation
from napari_mpi.enhance.deconvolution import (
    iter_richardson_lucy,
    richardson_lucy,
    richardson_lucy_array,
    wiener,
    wiener_array,
)
from napari_mpi.grid import Grid
from napari_mpi.image import MPIImage
from napari_mpi.progress import Progress
from napari_mpi.simulation.phantoms import vessel_phantom

GRID = Grid((16, 16, 16), (16e-3,) * 3, (0.0, 0.0, 0.0))
CLEAN = Degradation().without_noise()


def gaussian_psf(sigma=(1.5, 1.0, 1.0), size=9) -> np.ndarray:
    k = np.zeros((size,) * 3)
    k[(size // 2,) * 3] = 1.0
    k = gaussian_filter(k, sigma)
    return k / k.sum()


@pytest.fixture(scope="module")
def scan():
    phantom = vessel_phantom(GRID, seed=4)
    return phantom, CLEAN.apply(phantom)


def test_richardson_lucy_sharpens_a_gaussian_blur_like_scikit_image():
    from skimage.restoration import richardson_lucy as sk_richardson_lucy

    truth = np.zeros((20, 20, 20))
    truth[5:8, 5:15, 5:15] = 1.0
    truth[11:14, 8:12, 5:15] = 1.0
    k = gaussian_psf()
    blurred = fftconvolve(truth, k, mode="same")
    out = richardson_lucy_array(blurred, k, 60)
    assert out.min() >= 0
    err_in, err_out = np.abs(blurred - truth).mean(), np.abs(out - truth).mean()
    assert err_out < 0.5 * err_in
    # RL keeps the data: the re-blurred estimate is close to the blurred image
    assert np.abs(fftconvolve(out, k, mode="same") - blurred).mean() < 0.05 * err_in
    # away from the edges (sensitivity 1) it is scikit-image's RL, up to the flat start
    reference = sk_richardson_lucy(blurred, k, 60, clip=False)
    assert np.abs(out - reference).mean() < 0.02 * err_in


def test_wiener_periodic_equals_scikit_image():
    from skimage.restoration import wiener as sk_wiener

    rng = np.random.default_rng(1)
    image = rng.random((12, 14, 16))
    k = gaussian_psf(size=5)
    ours = wiener_array(image, k, balance=0.05, padding="periodic")
    np.testing.assert_allclose(ours, sk_wiener(image, k, 0.05, clip=False), atol=1e-10)


def test_wiener_undoes_a_blur_better_than_nothing():
    truth = np.zeros((24, 24, 24))
    truth[8:16, 10:14, 6:18] = 1.0
    k = gaussian_psf()
    blurred = fftconvolve(truth, k, mode="same")
    out = wiener_array(blurred, k, balance=1e-5, padding="zero")
    assert np.abs(out - truth).mean() < 0.5 * np.abs(blurred - truth).mean()


def test_deconvolving_the_layered_scan_keeps_the_grid_and_improves_psnr(scan):
    phantom, degraded = scan
    rl = richardson_lucy(degraded, iterations=40, degradation=CLEAN)
    wi = wiener(degraded, balance=1e-3, degradation=CLEAN)
    for out in (rl, wi):
        assert out.grid.same_as(degraded.grid) and out.data.shape == degraded.data.shape
        assert out.data.dtype == np.float32
    assert metrics.psnr(rl, phantom) > metrics.psnr(degraded, phantom)
    assert rl.metadata["method"] == "richardson-lucy" and rl.metadata["iterations"] == 40
    assert wi.metadata["psf"] == "degradation" and wi.metadata["degradation"]["model"] == "papers"


def test_given_psf_and_degradation_psf_agree(scan):
    _, degraded = scan
    a = richardson_lucy(degraded, 5, degradation=CLEAN)
    b = richardson_lucy(degraded, 5, psf=CLEAN.psf(GRID))
    np.testing.assert_allclose(a.data, b.data, rtol=1e-5)
    assert b.metadata["psf"] == "given"


def test_progress_per_iteration_and_frames(scan):
    _, degraded = scan
    two = MPIImage(np.concatenate([degraded.data, 2 * degraded.data]), GRID.fov, GRID.center)
    work = iter_richardson_lucy(two, iterations=3, degradation=CLEAN)
    steps = []
    while True:
        try:
            steps.append(next(work))
        except StopIteration as stop:
            out = stop.value
            break
    assert [s.done for s in steps] == [1, 2, 3, 4, 5, 6] and all(s.total == 6 for s in steps)
    assert isinstance(steps[0], Progress)
    np.testing.assert_allclose(out.data[1], 2 * out.data[0], rtol=1e-4, atol=1e-9)


def _image(data: np.ndarray, grid: Grid = GRID) -> MPIImage:
    return MPIImage(data, grid.fov, grid.center)


@pytest.mark.parametrize("method", [richardson_lucy, wiener])
def test_bad_images_are_refused(method):
    flat = Grid((1, 16, 16), (1e-3, 16e-3, 16e-3), (0, 0, 0))
    with pytest.raises(ValueError, match="2D image"):
        method(_image(np.ones((1, 16, 16)), flat))
    bad = np.ones(GRID.shape)
    bad[3, 4, 5] = np.nan
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        method(_image(bad))
    with pytest.raises(ValueError, match="empty"):
        method(MPIImage(np.zeros((0, 16, 16, 16)), GRID.fov, GRID.center))
    with pytest.raises(ValueError, match="expects an MPIImage"):
        method(np.ones(GRID.shape))


@pytest.mark.parametrize("method", [richardson_lucy, wiener])
def test_a_volume_smaller_than_the_psf_is_refused(method):
    thin = Grid((3, 16, 16), (3e-3, 16e-3, 16e-3), (0, 0, 0))  # z FWHM of the scan is ~7 mm
    with pytest.raises(ValueError, match="smaller than the PSF"):
        method(_image(np.ones(thin.shape), thin))
    with pytest.raises(ValueError, match="smaller than the PSF"):
        method(_image(np.ones(GRID.shape)), psf=np.ones((33, 3, 3)))
    with pytest.raises(ValueError, match="odd size"):
        method(_image(np.ones(GRID.shape)), psf=np.ones((4, 3, 3)))
    with pytest.raises(ValueError, match="3D like the image"):
        method(_image(np.ones(GRID.shape)), psf=np.ones((3, 3)))


def test_bad_parameters_are_refused(scan):
    _, degraded = scan
    with pytest.raises(ValueError, match="iterations"):
        richardson_lucy(degraded, iterations=0)
    with pytest.raises(ValueError, match="balance"):
        wiener(degraded, balance=0.0)
    with pytest.raises(ValueError, match="padding"):
        wiener(degraded, padding="mirror")
    with pytest.raises(ValueError, match="either psf or degradation"):
        wiener(degraded, psf=gaussian_psf(), degradation=CLEAN)


def test_acceleration_sharpens_faster_and_all_zero_stays_zero(scan):
    phantom, degraded = scan
    plain = richardson_lucy(degraded, 30, degradation=CLEAN, accelerate=False)
    fast = richardson_lucy(degraded, 30, degradation=CLEAN)
    assert fast.metadata["accelerate"] and not plain.metadata["accelerate"]
    assert metrics.psnr(fast, phantom) > metrics.psnr(plain, phantom)
    zero = richardson_lucy(_image(np.zeros(GRID.shape)), 5, degradation=CLEAN)
    assert np.all(zero.data == 0)
