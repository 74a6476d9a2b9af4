"""Deep image prior: registered, fits the data through the system matrix, frame-independent,
reproducible, early stops and cancels cleanly."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.metrics import psnr
from napari_mpi.progress import run
from napari_mpi.recon import get_method, methods, reconstruct
from napari_mpi.recon.dip import iter_dip, iter_dip_path
from napari_mpi.recon.operators import real_rhs, real_stack
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

FAST = {"width": 8, "depth": 2, "device": "cpu"}


def _residual(sm, u, images) -> np.ndarray:
    a, b = real_stack(sm.matrix), real_rhs(u)
    return np.linalg.norm(a @ images.T - b, axis=0) / np.linalg.norm(b, axis=0)


def test_registered_with_its_parameters():
    entry = get_method("dip", task="reconstruct")
    assert "dip" in [m.name for m in methods("reconstruct")]
    assert {"iterations", "lr", "width", "depth", "smoothing", "seed", "device"} <= {
        p.name for p in entry.params
    }
    with pytest.raises(ValueError, match="dip: parameter 'iterations' must be >= 1"):
        entry.check_params({"iterations": 0})


def test_fits_the_measurement_and_images_the_dots(two_points_2d):
    sm, u, truth = two_points_2d
    short = reconstruct(sm, u[:1], "dip", selection=None, iterations=5, **FAST)
    long = reconstruct(sm, u[:1], "dip", selection=None, iterations=200, **FAST)
    assert long.data.shape == (1, 1, 19, 19) and long.data.min() >= 0
    r_long = _residual(sm, u[:1], long.data.reshape(1, -1))[0]
    r_short = _residual(sm, u[:1], short.data.reshape(1, -1))[0]
    assert r_long < 0.5 * r_short
    t = truth.data.ravel()
    corr_long = np.corrcoef(long.data.ravel(), t)[0, 1]
    corr_short = np.corrcoef(short.data.ravel(), t)[0, 1]
    assert corr_long > 0.5 and corr_long > corr_short + 0.3
    assert psnr(long, truth) > psnr(short, truth) + 1


def test_frames_are_independent_of_their_batch_and_seeded(two_points_2d):
    sm, u, _ = two_points_2d
    together = run(iter_dip(sm, u, iterations=20, batch=3, **FAST))
    alone = np.concatenate(
        [run(iter_dip(sm, u[i : i + 1], iterations=20, **FAST)) for i in range(3)]
    )
    np.testing.assert_allclose(together, alone, rtol=1e-3, atol=1e-4 * together.max())
    again = run(iter_dip(sm, u, iterations=20, batch=2, **FAST))
    np.testing.assert_allclose(again, together, rtol=1e-3, atol=1e-4 * together.max())
    other = run(iter_dip(sm, u, iterations=20, seed=1, **FAST))
    assert np.abs(other - together).max() > 1e-3 * together.max()


def test_path_records_the_early_stops(two_points_2d):
    sm, u, _ = two_points_2d
    path = run(iter_dip_path(sm, u[:1], (10, 30), smoothing=0.0, **FAST))
    assert sorted(path) == [10, 30]
    for k in (10, 30):
        direct = run(iter_dip(sm, u[:1], iterations=k, smoothing=0.0, **FAST))
        np.testing.assert_allclose(path[k], direct, rtol=1e-4, atol=1e-6 * direct.max())
    with pytest.raises(ValueError, match="record_at"):
        run(iter_dip_path(sm, u[:1], ()))
    with pytest.raises(ValueError, match="unknown parameter"):
        run(iter_dip_path(sm, u[:1], (5,), sweeps=3))


def test_target_residual_stops_a_frame_early(two_points_2d):
    sm, u, _ = two_points_2d
    opts = {"smoothing": 0.0, **FAST}
    start = _residual(sm, u[:1], run(iter_dip(sm, u[:1], iterations=5, **opts)))[0]
    target = 0.7 * start
    steps = [p.done for p in _progress(iter_dip(sm, u[:1], iterations=300,
                                                target_residual=target, **opts))]  # fmt: skip
    assert 5 < max(steps[:-1]) < 300  # stopped after the start, before the last iteration
    images = run(iter_dip(sm, u[:1], iterations=300, target_residual=target, **opts))
    assert _residual(sm, u[:1], images)[0] <= target


def _progress(gen):
    out = []
    try:
        while True:
            out.append(next(gen))
    except StopIteration:
        return out


def test_zero_frame_nan_and_cancel(two_points_2d):
    sm, u, _ = two_points_2d
    frames = np.concatenate([np.zeros_like(u[:1]), u[:1]])
    images = run(iter_dip(sm, frames, iterations=20, **FAST))
    assert np.all(images[0] == 0) and images[1].max() > 0
    bad = u[:1].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run(iter_dip(sm, bad, iterations=5, **FAST))
    gen = iter_dip(sm, u, iterations=1000, **FAST)
    next(gen), next(gen)
    gen.close()  # cancelling mid-fit raises nothing


def test_3d_grid():
    scanner = get_preset("preclinical-3d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (6, 6, 4)))
    truth = np.zeros(sm.grid_shape)
    truth[1:3, 2:4, 2:4] = 1.0
    u = (sm.matrix @ truth.ravel())[None]
    img = reconstruct(sm, u, "dip", selection=None, iterations=200, **FAST)
    assert img.data.shape == (1, *sm.grid_shape)
    assert _residual(sm, u, img.data.reshape(1, -1))[0] < 0.5
