"""Phantoms: geometry in physical units, placement, files and bad parameters."""

from __future__ import annotations

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.resample import resample
from napari_mpi.simulation import get_preset, scanner_grid
from napari_mpi.simulation.phantoms import (
    digit_phantom,
    make_phantom,
    parse_phantom_spec,
    two_points,
    two_tubes,
    volume_phantom,
)

GRID = nm.Grid((1, 200, 200), fov=(0, 0.02, 0.02), center=(0, 0, 0))


def test_two_points_gap_in_mm():
    ph = two_points(GRID, gap=4e-3, diameter=1e-3)
    row = ph.data[0, 0, 100]
    peaks = np.flatnonzero(row > 0.5)
    centres = [peaks[peaks < 100].mean(), peaks[peaks > 100].mean()]
    assert (centres[1] - centres[0]) * 0.1e-3 == pytest.approx(4e-3, abs=0.1e-3)


def test_two_tubes_edge_gap():
    ph = two_tubes(GRID, gap=2e-3, diameter=1.2e-3)
    row = ph.data[0, 0, 50] > 0.5
    edges = np.flatnonzero(np.diff(row.astype(int)))
    inner_gap = (edges[2] - edges[1]) * 0.1e-3
    assert inner_gap == pytest.approx(2e-3, abs=0.15e-3)
    assert ph.data[0, 0, :, 100].max() == 0  # tubes run along y; the centre line is empty


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("two-points:gap=30", "gap"),
        ("two-points:gap=-1", "gap"),
        ("two-tubes:gap=19", "gap"),
        ("two-points", "gap"),
        ("shape:length=abc", "length"),
        ("blob", "unknown phantom"),
        ("two-points:gap=3,colour=red", "colour"),
        ("digit:path=/no/such/file.npz", "no such file"),
        ("two-points:gap=3,concentration=-2", "concentration"),
    ],
)
def test_bad_specs_name_the_parameter(spec, message):
    with pytest.raises(ValueError, match=message):
        make_phantom(spec, GRID)


def test_bad_npz(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz"):
        make_phantom(f"digit:path={bad}", GRID)
    strings = tmp_path / "keys.npz"
    np.savez(strings, a=np.zeros((2, 4, 4)), b=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="key="):
        make_phantom(f"digit:path={strings}", GRID)


def test_spec_parsing():
    assert parse_phantom_spec("two-points:gap=3,axis=y") == (
        "two-points",
        {"gap": "3", "axis": "y"},
    )
    with pytest.raises(ValueError, match="key=value"):
        parse_phantom_spec("two-points:3")


def test_mnist_digits_placed_as_in_dernet(shared_data):
    path = shared_data / "mnist-test10k" / "mnist.npz"
    grid = scanner_grid(get_preset("preclinical-2d"), (19, 19))
    a = digit_phantom(path, grid, index=9000, seed=1)
    b = digit_phantom(path, grid, index=9000, seed=1)
    c = digit_phantom(path, grid, index=9000, seed=2)
    assert np.array_equal(a.data, b.data)  # deterministic with a seed
    assert not np.array_equal(a.data, c.data)  # other rotation / placement
    assert a.data.shape == (1, 1, 19, 19) and a.data.max() == pytest.approx(1.0)
    assert 5 < (a.data > 0.3).sum() < 19 * 19 // 2


def test_vesselmnist_volume_resized(shared_data):
    path = shared_data / "vesselmnist3d" / "vesselmnist3d.npz"
    grid = nm.Grid((32, 32, 32), fov=(0.032,) * 3, center=(0, 0, 0))
    ph = volume_phantom(path, grid, index=0, key="train_images")
    assert ph.data.shape == (1, 32, 32, 32)
    assert ph.data.max() == pytest.approx(1.0) and (ph.data > 0.5).sum() > 100


@pytest.mark.parametrize(
    "spec", ["strokes:seed=4", "vessels:seed=4", "resolution", "shape", "concentration"]
)
def test_procedural_phantoms_need_no_files(spec):
    grid2 = scanner_grid(get_preset("preclinical-2d"), (32, 32))
    grid3 = scanner_grid(get_preset("preclinical-3d"), (16, 16, 8))
    for grid in (grid2, grid3):
        ph = make_phantom(spec, grid)
        assert ph.data.shape == (1, *grid.shape)
        assert ph.data.max() == pytest.approx(1.0) and (ph.data > 0).sum() > 3


def test_resample_preserves_mean_and_geometry():
    fine = nm.Grid((1, 60, 60), fov=(0, 0.024, 0.024), center=(0, 0, 0))
    coarse = nm.Grid((1, 20, 20), fov=(0, 0.024, 0.024), center=(0, 0, 0))
    ph = make_phantom("concentration", fine)
    down = resample(ph, coarse)
    assert down.data.mean() == pytest.approx(ph.data.mean(), rel=1e-6)
    # a shifted grid sees the object shifted, in physical coordinates
    shifted = nm.Grid((1, 20, 20), fov=(0, 0.024, 0.024), center=(0, 0, 0.0012))
    moved = resample(ph, shifted)
    np.testing.assert_allclose(moved.data[0, 0, :, :-1], down.data[0, 0, :, 1:], atol=1e-6)


def test_one_phantom_registry_feeds_specs_help_and_widget():
    """make_phantom, PHANTOM_SPEC_HELP and the Simulation widget's menu come from PHANTOMS."""
    from napari_mpi.simulation import phantom_specs
    from napari_mpi.simulation.phantoms import PHANTOM_SPEC_HELP, PHANTOMS, phantom_examples

    assert PHANTOMS is phantom_specs.PHANTOMS
    for name, kind in PHANTOMS.items():
        assert f"  {kind.usage()}" in PHANTOM_SPEC_HELP, name
    examples = phantom_examples()
    assert set(examples.values()) == {k.example for k in PHANTOMS.values() if k.example}
    for spec in examples.values():
        assert make_phantom(spec, GRID).data.max() > 0
    # a new entry appears in all three at once
    extra = phantom_specs.PhantomKind(
        "disc-test",
        lambda grid, concentration=1.0: make_phantom("two-points:gap=6", grid),
        (),
        "a test entry",
        "disc-test",
        "test disc",
    )
    phantom_specs.register_phantom(extra)
    try:
        assert "disc-test" in phantom_specs.phantom_spec_help()
        assert phantom_examples()["test disc"] == "disc-test"
        assert make_phantom("disc-test", GRID).metadata["spec"] == "disc-test"
    finally:
        PHANTOMS.pop("disc-test")
