"""One frequency selection: the object, its boundaries, the reader and the reconstruction.

Mutation check (a throwaway run, 2026-12-01): replacing ``>=`` by ``>`` in
``FrequencySelection.snr_mask`` (the one SNR filter behind ``select_frequencies`` and the
reader's threshold) makes ``test_row_exactly_at_the_threshold_is_kept`` and
``test_reader_keeps_a_row_exactly_at_the_threshold`` fail; ``>=`` -> ``>`` on the band's lower
edge makes ``test_band_edges_are_inclusive`` fail.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.frequency_selection import AUTO_SNR_THRESHOLD, FrequencySelection
from napari_mpi.recon.selection import apply_selection, select_frequencies
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix


@pytest.fixture(scope="module")
def small_sm():
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (6, 6)))


def _with_snr(sm, snr):
    from dataclasses import replace

    return replace(sm, snr=np.asarray(snr, dtype=np.float64))


def test_row_exactly_at_the_threshold_is_kept(small_sm):
    snr = np.linspace(0.0, 10.0, small_sm.num_rows)
    snr[5] = 4.0  # exactly at the threshold
    snr[6] = np.nextafter(4.0, 0.0)  # just below
    sm = _with_snr(small_sm, snr)
    kept = select_frequencies(sm, snr_threshold=4.0)
    assert kept.num_rows == int(np.sum(snr >= 4.0))
    assert 4.0 in kept.snr
    assert np.nextafter(4.0, 0.0) not in kept.snr
    # the object, the old positional argument and the keyword give the same rows
    same = select_frequencies(sm, FrequencySelection(snr_threshold=4.0))
    positional = select_frequencies(sm, 4.0)
    np.testing.assert_array_equal(same.snr, kept.snr)
    np.testing.assert_array_equal(positional.snr, kept.snr)


def test_band_edges_are_inclusive(small_sm):
    freqs = np.unique(small_sm.frequencies)
    lo, hi = float(freqs[3]), float(freqs[7])
    kept = select_frequencies(small_sm, min_frequency=lo, max_frequency=hi)
    assert set(np.unique(kept.frequencies)) == set(freqs[3:8])


def test_channels_and_bad_selections(small_sm):
    kept = select_frequencies(small_sm, channels=[1])
    assert set(kept.channels) == {1}
    with pytest.raises(ValueError, match="above max_frequency"):
        FrequencySelection(min_frequency=2e5, max_frequency=1e5)
    with pytest.raises(ValueError, match="out of range"):
        select_frequencies(small_sm, channels=[7])
    with pytest.raises(ValueError, match="out of range"):
        FrequencySelection(channels=(-1,))
    with pytest.raises(ValueError, match="leaves no rows"):
        select_frequencies(small_sm, snr_threshold=1e12)
    with pytest.raises(ValueError, match="not both"):
        FrequencySelection.coerce(FrequencySelection(), snr_threshold=3)
    with pytest.raises(ValueError, match="snr_threshold"):
        FrequencySelection(snr_threshold="high")


def test_the_selection_is_recorded(small_sm):
    kept = select_frequencies(small_sm, snr_threshold=5.0)
    assert kept.metadata["frequency_selection"]["snr_threshold"] == 5.0
    assert "frequency_selection" not in small_sm.metadata


def test_reader_keeps_a_row_exactly_at_the_threshold(tmp_path, small_sm):
    snr = np.linspace(0.0, 10.0, small_sm.num_rows)
    snr[5] = 4.0
    sm = _with_snr(small_sm, snr)
    path = nm.write_calibration(tmp_path / "cal.mdf", sm)
    with nm.read_mdf(path) as f:
        read = f.system_matrix(snr_threshold=4.0)
        by_object = f.system_matrix(selection=FrequencySelection(snr_threshold=4.0))
        positional_object = f.system_matrix(FrequencySelection(snr_threshold=4.0))
        every = f.system_matrix()
    assert read.num_rows == int(np.sum(snr >= 4.0))
    assert np.any(read.snr == 4.0)
    np.testing.assert_array_equal(by_object.matrix, read.matrix)
    np.testing.assert_array_equal(positional_object.matrix, read.matrix)
    # the reader and select_frequencies are the same filter
    np.testing.assert_array_equal(select_frequencies(every, snr_threshold=4.0).matrix, read.matrix)
    assert read.metadata["frequency_selection"]["snr_threshold"] == 4.0
    assert "frequency_selection" not in every.metadata


def test_auto_threshold_and_reconstruction_selection(small_sm):
    u = np.ones((1, small_sm.num_rows), dtype=np.complex64)
    auto = FrequencySelection(snr_threshold="auto")
    sub, u_sub = apply_selection(small_sm, u, auto)
    assert sub.num_rows == int(np.sum(small_sm.snr >= AUTO_SNR_THRESHOLD)) < small_sm.num_rows
    assert u_sub.shape == (1, sub.num_rows)
    # the same selection again reuses the selected matrix (and so its precomputations)
    again, _ = apply_selection(small_sm, u, auto)
    assert again is sub
    # a threshold the user chose is never overridden by "auto"
    user = select_frequencies(small_sm, snr_threshold=0.5)
    kept, _ = apply_selection(user, np.ones((1, user.num_rows)), auto)
    assert kept is user
    # no SNR: "auto" keeps every row, a number is refused
    from dataclasses import replace

    bare = replace(small_sm, snr=None)
    assert apply_selection(bare, u, auto)[0] is bare
    with pytest.raises(ValueError, match="no SNR"):
        select_frequencies(bare, snr_threshold=3)


def test_reconstruct_defaults_to_the_automatic_selection(small_sm):
    rng = np.random.default_rng(0)
    c = rng.random(small_sm.num_voxels)
    u = (small_sm.matrix @ c)[np.newaxis]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = nm.reconstruct(small_sm, u, "pinv")
    rows = int(np.sum(small_sm.snr >= AUTO_SNR_THRESHOLD))
    assert auto.metadata["rows_used"] == rows
    every = nm.reconstruct(small_sm, u, "pinv", selection=None)
    assert "rows_used" not in every.metadata
    chosen = select_frequencies(small_sm, snr_threshold=AUTO_SNR_THRESHOLD)
    u_chosen = u[:, small_sm.snr >= AUTO_SNR_THRESHOLD]
    same = nm.reconstruct(chosen, u_chosen, "pinv", selection=None)
    np.testing.assert_allclose(auto.data, same.data, rtol=1e-5, atol=1e-7)
