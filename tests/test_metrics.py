"""Metrics as in the DERnet paper, physical resampling, profiles, FWHM, resolvability."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

import napari_mpi as nm
from napari_mpi import metrics


def _img(data, fov=(0.0, 0.02, 0.02)):
    return nm.MPIImage(np.asarray(data, np.float32)[None, None], fov=fov, center=(0, 0, 0))


def test_definitions_match_the_paper():
    rng = np.random.default_rng(0)
    gt = rng.random((20, 20))
    pd = gt + rng.normal(0, 0.05, gt.shape)
    a, b = _img(pd), _img(gt)
    mse = np.mean((pd - gt) ** 2)
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(gt.max() ** 2 / mse), rel=1e-5)
    assert metrics.nrmse(a, b) == pytest.approx(
        np.linalg.norm(pd - gt) / np.linalg.norm(gt), rel=1e-5
    )
    assert metrics.rmse(a, b) == pytest.approx(np.sqrt(mse), rel=1e-5)
    expected = structural_similarity(
        pd.astype(np.float32).astype(float), gt.astype(np.float32).astype(float),
        data_range=float(gt.astype(np.float32).max() - gt.astype(np.float32).min()), win_size=7,
    )  # fmt: skip
    assert metrics.ssim(a, b) == pytest.approx(expected, rel=1e-6)
    assert set(metrics.compare(a, b)) == {"psnr", "ssim", "nrmse", "rmse"}


def test_reference_on_another_grid_is_resampled_physically():
    fine = np.zeros((60, 60))
    fine[20:40, 30:45] = 1.0
    ref = _img(fine)
    coarse = nm.resample.resample(ref, nm.Grid((1, 20, 20), (0, 0.02, 0.02), (0, 0, 0)))
    assert metrics.psnr(coarse, ref) == float("inf")
    # index matching would compare a 20x20 image with a 60x60 one: refused for bare arrays
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(coarse.data, ref.data)


def test_line_profile_and_fwhm():
    x = np.linspace(-10e-3, 10e-3, 201)
    gauss = np.exp(-(x**2) / (2 * (1e-3) ** 2))
    img = _img(np.tile(gauss, (5, 1)), fov=(0.0, 0.5e-3 * 5, 20.1e-3))
    dist, values = metrics.line_profile(img, (0.0, -8e-3), (0.0, 8e-3))
    assert dist[-1] == pytest.approx(16e-3)
    width = metrics.fwhm(values, dist[1] - dist[0])
    assert width == pytest.approx(2.3548e-3, rel=0.02)


def test_resolvability():
    x = np.linspace(-5, 5, 201)
    apart = np.exp(-((x - 2) ** 2)) + np.exp(-((x + 2) ** 2))
    merged = np.exp(-((x - 0.3) ** 2)) + np.exp(-((x + 0.3) ** 2))
    assert metrics.resolvability(apart) > 0.9
    assert metrics.resolvability(merged) == 0.0
