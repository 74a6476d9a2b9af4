"""Overlapping-tile application: exact for local linear operations, blended seams, 128^3."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_mpi.enhance.tiling import apply_tiled, iter_tiled, tile_starts


def blur(v: np.ndarray) -> np.ndarray:
    """A linear operation reaching 2 voxels (sigma 1, truncate 2), zero outside."""
    return gaussian_filter(v, 1.0, truncate=2.0, mode="constant")


def test_tile_starts_cover_the_axis():
    assert tile_starts(20, 32, 8) == [0]
    assert tile_starts(128, 32, 8) == [0, 24, 48, 72, 96]
    starts = tile_starts(50, 32, 8)
    assert starts == [0, 18] and starts[-1] + 32 == 50


@pytest.mark.parametrize("shape", [(40, 37, 50), (20, 64, 33)])
def test_tiled_equals_untiled_for_a_local_linear_op(shape):
    v = np.random.default_rng(0).random(shape).astype(np.float32)
    tiled = apply_tiled(v, blur, tile=(16, 20, 24), overlap=6, halo=2)
    np.testing.assert_allclose(tiled, blur(v), rtol=1e-5, atol=1e-6)


def test_too_small_a_halo_shows_and_seams_are_blended():
    v = np.random.default_rng(1).random((48, 48, 48)).astype(np.float32)
    wide = lambda t: gaussian_filter(t, 2.0, truncate=3.0, mode="constant")  # noqa: E731
    err = np.abs(apply_tiled(v, wide, 24, 8, 1) - wide(v)).max()
    assert err > 1e-3  # halo 1 < the op's reach of 6 voxels: edge effects leak in
    # a per-tile constant: blending turns the steps between tiles into ramps
    ramp = np.broadcast_to(np.arange(64, dtype=np.float32), (8, 8, 64))
    out = apply_tiled(ramp, lambda t: np.full_like(t, t.mean()), (8, 8, 16), 8, 1)
    steps = np.abs(np.diff(out[0, 0]))
    assert steps.max() < 0.5 * 8  # the tile means differ by 8 from tile to tile
    assert out[0, 0, 0] < out[0, 0, -1]


def test_a_128_cube_with_bounded_memory_and_progress():
    v = np.random.default_rng(2).random((128, 128, 128)).astype(np.float32)
    tracemalloc.start()
    work = iter_tiled(v, blur, 32, 8, 2)
    steps = []
    while True:
        try:
            steps.append(next(work))
        except StopIteration as stop:
            out = stop.value
            break
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(steps) == 125 and steps[-1].done == steps[-1].total == 125
    assert peak < 48 * 2**20  # two float64 accumulators (32 MiB), the result, one tile
    np.testing.assert_allclose(out, blur(v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile": 8, "overlap": 8}, "tile > overlap"),
        ({"overlap": 4, "halo": 2}, "2 \\* halo \\+ 1"),
        ({"tile": -1}, "non-negative"),
        ({"tile": (32, 32)}, "three"),
    ],
)
def test_bad_tiling_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        apply_tiled(np.zeros((40, 40, 40)), blur, **kwargs)


def test_bad_volumes_and_functions_are_refused():
    with pytest.raises(ValueError, match=r"\(z, y, x\)"):
        apply_tiled(np.zeros((40, 40)), blur)
    with pytest.raises(ValueError, match="keep the shape"):
        apply_tiled(np.zeros((40, 40, 40)), lambda t: t[1:])
