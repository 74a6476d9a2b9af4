"""The training phantom mix: every kind draws a varied object inside the grid, weights are
honoured, splits stay apart, bad weights are refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.recon.training_config import DenoiserConfig, DERnetConfig
from napari_mpi.recon.training_data import make_training_set
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix
from napari_mpi.simulation.phantom_mix import (
    DEFAULT_MIX,
    MIX_KINDS,
    PhantomMix,
    check_mix,
    mix_phantom,
    parse_mix,
)

SCANNER = get_preset("preclinical-2d")
GRID = scanner_grid(SCANNER, (19, 19))


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    images = np.zeros((12, 28, 28))
    for i, img in enumerate(images):
        img[6 + i % 5 : 20, 10 : 12 + i % 7] = rng.uniform(0.5, 1.0)
    return images


@pytest.mark.parametrize("kind", MIX_KINDS)
def test_every_kind_draws_varied_objects_with_maximum_one(kind, digits):
    draws = [mix_phantom(kind, GRID, np.random.default_rng(s), digits) for s in range(6)]
    for values in draws:
        assert values.shape == GRID.shape and values.dtype == np.float32
        assert values.max() == pytest.approx(1.0) and values.min() >= 0
        assert 0.003 < np.mean(values > 0.05) < 0.8  # an object, neither a speck nor a slab
    assert not any(np.array_equal(draws[0], d) for d in draws[1:])  # seeds differ
    again = mix_phantom(kind, GRID, np.random.default_rng(0), digits)
    np.testing.assert_array_equal(again, draws[0])  # deterministic


def test_sizes_follow_the_unit_on_a_finer_grid():
    fine = scanner_grid(SCANNER, (95, 95))
    unit = float(np.mean(GRID.voxel_size[1:]))
    coarse = [np.mean(mix_phantom("points", GRID, np.random.default_rng(s)) > 0.5)
              for s in range(20)]  # fmt: skip
    fine_own = [np.mean(mix_phantom("points", fine, np.random.default_rng(s)) > 0.5)
                for s in range(20)]  # fmt: skip
    fine_unit = [np.mean(mix_phantom("points", fine, np.random.default_rng(s), unit=unit) > 0.5)
                 for s in range(20)]  # fmt: skip
    # the same objects in mm: a similar area fraction with the coarse unit, 25x less without
    assert np.mean(fine_unit) == pytest.approx(np.mean(coarse), rel=0.35)
    assert np.mean(fine_own) < np.mean(coarse) / 10
    with pytest.raises(ValueError, match="unit"):
        mix_phantom("points", fine, np.random.default_rng(0), unit=-1.0)


def test_weights_are_honoured_and_digits_left_out_without_a_file():
    rng = np.random.default_rng(1)
    mix = PhantomMix({"tubes": 3, "cone": 1, "digit": 0}, has_digits=True)
    kinds = [mix.kind(rng) for _ in range(4000)]
    assert set(kinds) == {"tubes", "cone"}
    assert kinds.count("tubes") / len(kinds) == pytest.approx(0.75, abs=0.03)
    default = PhantomMix(None, has_digits=False)
    assert "digit" not in default.kinds and default.p.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="only digits"):
        PhantomMix({"digit": 1}, has_digits=False)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"tube": 1}, "unknown kind 'tube'"),
        ({"tubes": -1}, "tubes must be finite and >= 0"),
        ({"tubes": float("nan")}, "tubes must be finite"),
        ({"tubes": 0, "cone": 0}, "positive sum"),
        ({"tubes": "many"}, "tubes must be a number"),
    ],
)
def test_bad_weights_are_refused_by_name(weights, match):
    with pytest.raises(ValueError, match=match):
        check_mix(weights)
    with pytest.raises(ValueError, match=match):
        DERnetConfig(phantom_mix=weights).check()
    with pytest.raises(ValueError, match=match):
        DenoiserConfig(phantom_mix=weights).check()


def test_parse_mix_reads_the_widget_text():
    assert parse_mix("tubes=0.5, cone=0.5") == {"tubes": 0.5, "cone": 0.5}
    with pytest.raises(ValueError, match="KIND=WEIGHT"):
        parse_mix("tubes")
    with pytest.raises(ValueError, match="at least one"):
        parse_mix("  ")
    assert check_mix(None) == DEFAULT_MIX and DERnetConfig().phantom_mix == DEFAULT_MIX


def test_training_sets_of_a_mix_keep_their_kinds_and_splits(tmp_path, digits):
    sm = simulate_system_matrix(SCANNER, scanner_grid(SCANNER, (9, 9)))
    path = tmp_path / "digits.npz"
    np.savez(path, data=np.tile(digits, (10, 1, 1)))  # 120 images: 0-107 train/val, 108+ test
    mix = {"digit": 1, "tubes": 1, "vessels": 1}
    train = make_training_set(sm, path, 300, split="train", mix=mix, seed=3)
    val = make_training_set(sm, path, 100, split="val", mix=mix, seed=3)
    assert set(train.kinds) == set(mix) and set(val.kinds) == set(mix)
    for ts in (train, val):
        is_digit = ts.kinds == "digit"
        assert np.all(ts.source_index[is_digit] >= 0) and np.all(ts.source_index[~is_digit] == -1)
    assert not set(train.source_index[train.kinds == "digit"]) & set(
        val.source_index[val.kinds == "digit"]
    )
    np.testing.assert_allclose(np.abs(train.clean), np.abs(
        (sm.matrix @ train.phantoms.reshape(300, -1).T).T), rtol=1e-3, atol=1e-5)  # fmt: skip
    again = make_training_set(sm, path, 300, split="train", mix=mix, seed=3)
    np.testing.assert_array_equal(again.phantoms, train.phantoms)
    other = make_training_set(sm, path, 300, split="train", mix=mix, seed=3, draw=1)
    assert not np.array_equal(other.phantoms, train.phantoms)
    plain = make_training_set(sm, path, 20, split="train", seed=3)  # no mix: digits only
    assert set(plain.kinds) == {"digit"}
    only = make_training_set(sm, path, 20, split="train", seed=3, mix={"digit": 1})
    np.testing.assert_array_equal(only.phantoms, plain.phantoms)  # the paper's data, exactly
    np.testing.assert_array_equal(only.measurements, plain.measurements)
