"""Enhancement pairs: VesselMNIST3D splits at 32^3, procedural trees, seeds, the test guard."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.enhance import Degradation
from napari_mpi.enhance.data import (
    check_training_split,
    input_scale,
    iter_pairs,
    load_split,
    make_pairs,
)

CLEAN = Degradation().without_noise()


@pytest.fixture
def vessels(shared_data):
    return shared_data / "vesselmnist3d" / "vesselmnist3d.npz"


@pytest.mark.shared_data
def test_vesselmnist_pairs_use_the_stored_split_at_32(vessels):
    pairs = make_pairs(vessels, "val", count=3, start=5)
    assert pairs.inputs.shape == pairs.targets.shape == (3, 32, 32, 32)
    assert pairs.inputs.dtype == np.float32 and list(pairs.indices) == [5, 6, 7]
    raw = load_split(vessels, "val")
    assert raw.shape == (191, 28, 28, 28)
    # the phantom is the stored volume / 255, resized: same occupied share and range
    assert pairs.targets.max() <= 1.0 and pairs.targets.min() >= 0.0
    share = (raw[5] > 127).mean()
    assert (pairs.targets[0] > 0.5).mean() == pytest.approx(share, rel=0.25)
    # degraded: blurred (lower peak), noisy, in the same units
    assert pairs.inputs[0].max() < 0.5 * pairs.targets[0].max()
    card = pairs.card()
    assert card["split"] == "val" and card["grid_shape_zyx"] == [32, 32, 32]
    assert card["degradation"] == Degradation().to_dict()
    assert "max(input)" in card["normalisation"]["network_scale"]
    assert len(load_split(vessels, "test")) == 382


@pytest.mark.shared_data
def test_pairs_are_deterministic_whatever_the_window(vessels):
    a = make_pairs(vessels, "train", count=4)
    b = make_pairs(vessels, "train", count=2, start=2)
    np.testing.assert_array_equal(a.inputs[2:], b.inputs)
    np.testing.assert_array_equal(a.targets[2:], b.targets)
    c = make_pairs(vessels, "train", count=2, start=2, seed=1)
    np.testing.assert_array_equal(c.targets, b.targets)
    assert not np.array_equal(c.inputs, b.inputs)  # other noise


def test_procedural_pairs_differ_between_splits_and_are_seeded():
    train = make_pairs(None, "train", CLEAN, count=3, size=16)
    again = make_pairs(None, "train", CLEAN, count=3, size=16)
    np.testing.assert_array_equal(train.targets, again.targets)
    test = make_pairs(None, "test", CLEAN, count=3, size=16)
    for t in test.targets:
        assert not any(np.array_equal(t, s) for s in train.targets)
    assert train.source == "procedural" and "procedural" in train.normalisation["phantom"]
    assert train.image(0).metadata["degradation"]["model"] == "papers"
    assert train.image(0, "target").grid_shape == (16, 16, 16)


def test_the_test_split_is_refused_for_training_and_selection():
    check_training_split(make_pairs(None, "val", CLEAN, count=1, size=8), "tuning")
    with pytest.raises(ValueError, match="tuning may use only"):
        check_training_split(make_pairs(None, "test", CLEAN, count=1, size=8), "tuning")
    with pytest.raises(ValueError, match="test split"):
        check_training_split("test")


def test_input_scale_is_the_input_maximum():
    _, degraded, _ = next(iter_pairs(None, "train", CLEAN, count=1, size=8))
    assert input_scale(degraded) == pytest.approx(float(degraded.max()))
    assert input_scale(np.zeros(3)) > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "holdout"}, "split"),
        ({"source": "/nope.npz"}, "no such file"),
        ({"count": 0}, "count"),
        ({"size": 2}, "size"),
    ],
)
def test_bad_pair_requests_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_pairs(**{"degradation": CLEAN, **kwargs})


def test_a_single_array_file_is_split_by_index_and_flat_images_are_refused(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, data=np.zeros((20, 8, 8, 8), np.uint8))
    assert load_split(path, "train").shape == (18, 8, 8, 8)
    assert load_split(path, "val").shape == (2, 8, 8, 8)
    with pytest.raises(ValueError, match="'test' split has no images"):
        load_split(path, "test")  # datasets' index split: test from index 9000
    np.savez(path, train_images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"\(n, d, h, w\)"):
        load_split(path, "train")
