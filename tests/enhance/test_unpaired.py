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


def test_shrunk_phantoms_are_smaller_placed_at_random_and_deterministic(digits_file):
    from napari_mpi.enhance.unpaired import load_phantoms

    digits = load_phantoms(digits_file, "train")
    for source in (digits, None):
        full = phantom(source, "train", 3, size=SMALL)
        np.testing.assert_array_equal(full, phantom(source, "train", 3, size=SMALL,
                                                    scale_range=(1.0, 1.0)))  # fmt: skip
        small = [phantom(source, "train", i, size=SMALL, scale_range=(0.4, 0.6)) for i in range(6)]
        for i, img in enumerate(small):
            assert img.shape == (SMALL, SMALL) and img.max() == pytest.approx(1.0)
            assert img.min() >= 0
            np.testing.assert_array_equal(img, phantom(source, "train", i, size=SMALL,
                                                       scale_range=(0.4, 0.6)))  # fmt: skip
            rows, cols = np.nonzero(img)
            # nothing outside a square of at most 0.6 x SMALL (+1 for rounding)
            assert np.ptp(rows) <= 0.6 * SMALL + 1 and np.ptp(cols) <= 0.6 * SMALL + 1
        if source is not None:  # the same digit shrunk covers fewer pixels
            assert (small[3] > 0.5).sum() < (full > 0.5).sum()
        centres = {tuple(np.round(np.argwhere(img > 0).mean(axis=0))) for img in small}
        assert len(centres) > 3  # placed at random, not all at the centre
    for bad in ((0.0, 0.5), (0.7, 0.5), (0.5, 1.2)):
        with pytest.raises(ValueError, match="scale_range"):
            phantom(digits, "train", 0, size=SMALL, scale_range=bad)
    d = run(iter_make_domains(digits_file, XSpaceBlur(), 4, y_iterations=5, size=SMALL,
                              scale_range=(0.5, 0.5), shift=0.2))  # fmt: skip
    assert d.card["phantom_scale"] == [0.5, 0.5] and d.x.shape == (2, SMALL, SMALL)
    assert d.card["phantom_shift"] == 0.2


def test_shifted_phantoms_move_by_whole_pixels_and_are_cut_at_the_edge():
    img = np.zeros((28, 28))
    img[4:24, 10:18] = 1.0  # a bar, 20 x 8 pixels of 28
    digits = np.stack([img] * 30)
    full = phantom(digits, "train", 0, size=SMALL)
    moved = [phantom(digits, "train", i, size=SMALL, shift=0.4) for i in range(30)]
    reach = round(0.4 * SMALL)
    cut = 0
    for i, m in enumerate(moved):
        np.testing.assert_array_equal(m, phantom(digits, "train", i, size=SMALL, shift=0.4))
        assert m.max() == pytest.approx(1.0) and m.sum() <= full.sum() + 1e-3
        # a pure translation of the centred bar, by at most reach pixels along each axis
        (r0, c0), (r1, c1) = np.argwhere(full > 0.5).min(0), np.argwhere(m > 0.5).min(0)
        assert abs(int(r1) - int(r0)) <= reach and abs(int(c1) - int(c0)) <= reach
        cut += m.sum() < full.sum() - 1.0
    assert cut >= 3  # some are moved partly out of the FOV, what left it is gone
    assert len({m.tobytes() for m in moved}) > 10  # the moves differ from phantom to phantom
    np.testing.assert_array_equal(phantom(digits, "train", 0, size=SMALL, shift=0.0), full)
    # along y only (across the scan direction): the columns stay where they were
    cols = np.flatnonzero(full.max(axis=0) > 0.5)
    along_y = [
        phantom(digits, "train", i, size=SMALL, shift=0.4, shift_axes="y") for i in range(30)
    ]
    for m in along_y:
        np.testing.assert_array_equal(np.flatnonzero(m.max(axis=0) > 0.5), cols)
    assert len({m.tobytes() for m in along_y}) > 10
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="shift"):
            phantom(digits, "train", 0, size=SMALL, shift=bad)
    with pytest.raises(ValueError, match="shift_axes"):
        phantom(digits, "train", 0, size=SMALL, shift=0.1, shift_axes="z")


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
    # one hump between the tubes: both windows find the same maximum, a dip of 1, not nan
    left, right = tube_centres(1.0e-3)
    hump = np.exp(-0.5 * ((np.arange(101) - (left + right) / 2) / 3.0) ** 2)
    one = dip_ratio(hump, 1.0e-3)
    assert one["peak_left_px"] == one["peak_right_px"]
    assert one["dip"] == 1.0 and not one["resolved"]
