"""PP-MPI with the shipped denoiser: loads safely, denoises, reconstructs."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.metrics import psnr
from napari_mpi.recon import methods, reconstruct
from napari_mpi.recon.ppmpi import _denoise, default_denoiser_path, load_denoiser
from napari_mpi.simulation import (
    get_preset,
    scanner_grid,
)
from napari_mpi.simulation.phantoms import make_phantom


def test_shipped_model_and_card():
    import json

    folder = default_denoiser_path()
    card = json.loads((folder / "card.json").read_text())
    assert card["method"] == "ppmpi-denoiser" and "napari-mpi train ppmpi" in card["command"]
    assert card["metrics"]["val_gain_db"] > 3
    assert (folder / "model.pt").stat().st_size < 2_000_000
    assert "ppmpi" in [m.name for m in methods()]


def test_denoiser_removes_noise():
    grid = scanner_grid(get_preset("preclinical-2d"), (24, 24))
    clean = make_phantom("strokes:seed=123", grid).data  # (1, 1, 24, 24), max 1
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 0.08, clean.shape).astype(np.float32)
    out = _denoise(load_denoiser(), np.clip(noisy[0:1, :, :, :], 0, None)[0][None])
    err_in = np.mean((noisy - clean) ** 2)
    err_out = np.mean((out - clean) ** 2)
    assert 10 * np.log10(err_in / err_out) > 3


def test_ppmpi_reconstructs(two_points_2d):
    sm, u, truth = two_points_2d
    img = reconstruct(sm, u, "ppmpi", iterations=20)
    assert img.data.shape == (3, 1, 19, 19) and img.data.min() >= 0
    plain = reconstruct(sm, u, "pinv", lam=0.0, enforce_positive=False)
    assert psnr(img, truth) > psnr(plain, truth) + 10


def test_bad_model_path(two_points_2d, tmp_path):
    sm, u, _ = two_points_2d
    with pytest.raises(ValueError, match="missing"):
        reconstruct(sm, u, "ppmpi", model=str(tmp_path))
