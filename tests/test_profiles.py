"""Line-profile analysis: FWHM of every peak, peak-to-valley ratio, clipping to the FOV."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.profiles import clip_segment, find_peaks, fwhm, peak_to_valley


def gaussian(x, centre, fwhm_, height=1.0):
    sigma = fwhm_ / (2 * np.sqrt(2 * np.log(2)))
    return height * np.exp(-0.5 * ((x - centre) / sigma) ** 2)


def test_two_separated_tubes_give_two_fwhms_and_a_deep_valley():
    x = np.arange(0, 40, 0.05)  # mm
    profile = gaussian(x, 12, 2.0) + gaussian(x, 26, 3.0, height=0.8)
    peaks = find_peaks(profile, spacing=0.05)
    assert [round(p.position, 1) for p in peaks] == [12.0, 26.0]
    assert peaks[0].fwhm == pytest.approx(2.0, rel=0.01)
    assert peaks[1].fwhm == pytest.approx(3.0, rel=0.01)
    assert peaks[1].height == pytest.approx(0.8, rel=1e-3)
    assert peak_to_valley(profile, peaks) > 100  # the dip nearly reaches 0
    # the single-peak helper agrees on the highest one
    assert fwhm(profile, 0.05) == pytest.approx(peaks[0].fwhm, rel=1e-6)


def test_overlapping_peaks_ratio_and_unresolved_width():
    x = np.linspace(-10, 10, 801)
    spacing = x[1] - x[0]
    close = gaussian(x, -1.5, 3.0) + gaussian(x, 1.5, 3.0)  # dip above half maximum
    peaks = find_peaks(close, spacing)
    assert len(peaks) == 2
    assert all(np.isnan(p.fwhm) for p in peaks)  # not resolved at half maximum
    valley = close[np.argmin(np.abs(x))]
    assert peak_to_valley(close, peaks) == pytest.approx(peaks[0].height / valley, rel=1e-6)
    assert 1 < peak_to_valley(close, peaks) < 2


def test_noise_and_edges():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 20, 401)
    profile = gaussian(x, 10, 2.0) + 0.01 * rng.standard_normal(x.size)
    peaks = find_peaks(profile, x[1] - x[0])
    assert len(peaks) == 1  # noise wiggles are below the prominence threshold
    assert peaks[0].fwhm == pytest.approx(2.0, rel=0.05)
    assert np.isnan(peak_to_valley(profile))
    # a peak cut by the end of the line has no width
    edge = find_peaks(gaussian(x, 19.9, 2.0), x[1] - x[0])
    assert len(edge) == 1 and np.isnan(edge[0].fwhm)
    assert find_peaks(np.zeros(10)) == []
    with pytest.raises(ValueError, match="1-D"):
        find_peaks(np.ones((3, 3)))


def test_clip_segment_to_the_field_of_view():
    lo, hi = np.array([-12.0, -12.0]), np.array([12.0, 12.0])
    assert clip_segment([0, -20], [0, 20], lo, hi) == pytest.approx((0.2, 0.8))
    assert clip_segment([-5, -5], [5, 5], lo, hi) == (0.0, 1.0)
    assert clip_segment([20, -20], [20, 20], lo, hi) is None  # parallel, outside
    assert clip_segment([13, 0], [30, 1], lo, hi) is None


@pytest.mark.parametrize("side", [0, 1])
def test_mirror_peaks_a_last_bit_apart_are_both_found(side):
    """Which of two equal peaks rounds a last bit lower must not hide it (it did: numpy's exp
    made the right one 2.2e-16 lower and only the left one was found)."""
    x = np.linspace(-10, 10, 801)
    close = gaussian(x, -1.5, 3.0) + gaussian(x, 1.5, 3.0)
    i = int(np.argmax(close[:400])) if side == 0 else 400 + int(np.argmax(close[400:]))
    close[i] = np.nextafter(close[i], 0.0)  # one peak one ulp lower
    assert len(find_peaks(close, x[1] - x[0])) == 2
    # a clearly lower second peak with a shallow dip is still not a peak of its own
    close[i] *= 0.999
    assert len(find_peaks(close, x[1] - x[0])) == 1
