"""DC_GAN's data: unpaired domains (X native, Y deconvolved with the true PSF, from disjoint
phantoms), deterministic; paired sets for validation and tests only; gain-fitted scores; the
two-tube resolution criterion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

from napari_mpi.enhance.tube_resolution import (
    RAYLEIGH_DIP,
    dip_ratio,
    tube_centres,
    tube_pair,
    tube_profile,
)
from napari_mpi.enhance.unpaired import (
    fitted_gain,
    image_grid,
    iter_make_domains,
    make_paired,
    phantom,
    scores,
)
from napari_mpi.progress import run
from napari_mpi.simulation.psf_mismatch import XSpaceBlur

SMALL = 48


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    """An MNIST-style file of 40 blob 'digits' (28 x 28): 36 train, 4 val by index."""
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    for img in images:
        y, x = rng.integers(6, 22, size=2)
        img[y - 4 : y + 4, x - 2 : x + 2] = 255
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(path, data=images)
    return path


def domains(source=None, seed=0, count=6, iterations=20):
    return run(iter_make_domains(source, XSpaceBlur(), count, seed, y_iterations=iterations,
                                 size=SMALL))  # fmt: skip


def test_domains_are_unpaired_scaled_and_deterministic(digits_file):
    d = domains(digits_file)
    assert d.x.shape == d.y.shape == (3, SMALL, SMALL)
    assert not set(d.x_index) & set(d.y_index)  # no image in X has its partner in Y
    np.testing.assert_allclose(d.x.max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(d.y.max(axis=(1, 2)), 1.0)
    again = domains(digits_file)
    np.testing.assert_array_equal(d.x, again.x)
    np.testing.assert_array_equal(d.y, again.y)
    assert not np.array_equal(domains(digits_file, seed=1).x, d.x)  # noise follows the seed
    assert d.y_gain > 1.5  # a deblurred image is much brighter than its native image
    assert d.card["source"] == str(digits_file) and d.card["blur"] == XSpaceBlur().to_dict()


def test_domain_y_is_much_closer_to_its_phantoms_than_domain_x():
    d = domains(None, count=8, iterations=300)

    def psnr(images, indices):
        return np.mean([scores(im, phantom(None, "train", int(i), size=SMALL))["psnr"]
                        for im, i in zip(images, indices, strict=True)])  # fmt: skip

    assert psnr(d.y, d.y_index) > psnr(d.x, d.x_index) + 3


def test_paired_sets_are_for_validation_and_tests_only(digits_file):
    natives, phantoms = make_paired(digits_file, "val", XSpaceBlur(), 2, size=SMALL)
    assert natives.shape == phantoms.shape == (2, SMALL, SMALL)
    assert phantoms.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="validation or tests"):
        make_paired(digits_file, "train", XSpaceBlur(), 2)
    with pytest.raises(ValueError, match="has 4 in its val split"):
        make_paired(digits_file, "val", XSpaceBlur(), 5)
    with pytest.raises(ValueError, match="has 36 in its training split"):
        domains(digits_file, count=40)
    with pytest.raises(ValueError, match="count must be >= 2"):
        domains(digits_file, count=1)


def test_procedural_phantoms_vary_and_stay_in_zero_one():
    a, b = phantom(None, "train", 0, size=SMALL), phantom(None, "train", 1, size=SMALL)
    assert a.max() == pytest.approx(1.0) and a.min() >= 0 and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, phantom(None, "train", 0, size=SMALL))


def test_scores_fit_the_gain_so_units_do_not_matter():
    rng = np.random.default_rng(0)
    ph = np.zeros((32, 32))
    ph[8:20, 10:14] = 1
    noisy = ph + 0.05 * rng.standard_normal(ph.shape)
    a, b = scores(noisy, ph), scores(7.5 * noisy, ph)
    assert a["psnr"] == pytest.approx(b["psnr"]) and a["ssim"] == pytest.approx(b["ssim"])
    assert fitted_gain(7.5 * ph, ph) == pytest.approx(1 / 7.5)
    assert scores(np.zeros_like(ph), ph)["psnr"] < scores(noisy, ph)["psnr"]
    with pytest.raises(ValueError, match="2D, one shape"):
        scores(ph[:5], ph)


def test_the_tube_criterion_resolves_the_phantom_and_not_a_blurred_pair():
    grid = image_grid()
    ph = tube_pair(1.0e-3)
    left, right = tube_centres(1.0e-3)
    assert right - left == pytest.approx(2.2e-3 / float(grid.voxel_size[2]))
    sharp = dip_ratio(tube_profile(ph), 1.0e-3)
    assert sharp["resolved"] and sharp["dip"] < 0.2
    blurred = fftconvolve(ph, XSpaceBlur().true_psf(grid)[0], mode="same")
    wide = dip_ratio(tube_profile(blurred), 1.0e-3)
    assert not wide["resolved"] and wide["dip"] > RAYLEIGH_DIP
    flat = dip_ratio(np.ones(101), 2.0e-3)
    assert flat["dip"] == pytest.approx(1.0) and not flat["resolved"]
    assert np.isnan(dip_ratio(np.zeros(101), 2.0e-3)["dip"])
