"""Training pairs from any system matrix: splits, determinism, SNR, placement."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.recon.training_data import make_training_set, split_indices
from napari_mpi.simulation import get_preset, measured_snr_db, scanner_grid, simulate_system_matrix


@pytest.fixture(scope="module")
def sm():
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (11, 11)))


def test_split_indices_never_overlap():
    train, val, test = (split_indices(10000, s) for s in ("train", "val", "test"))
    assert (train.min(), train.max(), val.min(), val.max()) == (0, 8099, 8100, 8999)
    assert (test.min(), test.max()) == (9000, 9999)
    assert not set(train) & set(val) and not set(val) & set(test)


def test_mnist_pairs(sm, shared_data):
    path = shared_data / "mnist-test10k" / "mnist.npz"
    a = make_training_set(sm, path, 40, split="test", seed=3)
    b = make_training_set(sm, path, 40, split="test", seed=3)
    assert np.array_equal(a.measurements, b.measurements)  # deterministic
    assert a.measurements.shape == (40, sm.num_rows) and a.phantoms.shape == (40, 1, 11, 11)
    assert a.source_index.min() >= 9000 and len(set(a.source_index)) == 40
    assert np.all((a.snr_db >= 20) & (a.snr_db <= 40))
    for i in range(5):
        clean = sm.matrix @ a.phantoms[i].reshape(-1)
        assert abs(measured_snr_db(clean, a.measurements[i]) - a.snr_db[i]) < 1.0
    train = make_training_set(sm, path, 20, split="train", seed=3)
    assert train.source_index.max() < 8100


def test_redraw_noise_keeps_clean_signal_and_snr_range(sm):
    a = make_training_set(sm, None, 30, seed=1)
    np.testing.assert_allclose(
        a.clean, a.phantoms.reshape(30, -1) @ sm.matrix.T.astype(np.complex64), rtol=1e-4, atol=1e-6
    )
    before = a.measurements.copy()
    u = a.redraw_noise(np.random.default_rng(0), (25.0, 25.0))
    assert u.shape == before.shape and u.dtype == np.complex64
    assert np.array_equal(a.measurements, before)  # the set itself is unchanged
    assert not np.allclose(u, before)
    snrs = [measured_snr_db(c, n) for c, n in zip(a.clean, u, strict=True)]
    assert abs(np.mean(snrs) - 25.0) < 0.5
    a.clean = None
    with pytest.raises(ValueError, match="clean"):
        a.redraw_noise(np.random.default_rng(0))


def test_procedural_source_needs_no_file(sm):
    data = make_training_set(sm, None, 8, split="val", seed=1, snr_range=(30, 30))
    assert np.allclose(data.snr_db, 30) and data.phantoms.max() == pytest.approx(1.0)


def test_other_draws_place_the_same_split_anew(sm, shared_data):
    path = shared_data / "mnist-test10k" / "mnist.npz"
    first = make_training_set(sm, path, 30, split="val", seed=2)
    again = make_training_set(sm, path, 30, split="val", seed=2, draw=0)
    second = make_training_set(sm, path, 30, split="val", seed=2, draw=1)
    assert np.array_equal(first.phantoms, again.phantoms)  # draw 0 is the set itself
    assert not np.allclose(first.phantoms, second.phantoms)
    assert not np.allclose(first.snr_db, second.snr_db)
    for d in (first, second):  # still only validation digits
        assert d.source_index.min() >= 8100 and d.source_index.max() < 9000
    third = make_training_set(sm, path, 30, split="val", seed=2, draw=1)
    assert np.array_equal(second.measurements, third.measurements)  # deterministic


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "dev"}, "split"),
        ({"snr_range": (40, 20)}, "snr_range"),
        ({"draw": -1}, "draw"),
    ],
)
def test_bad_arguments(sm, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_training_set(sm, None, 2, **kwargs)
