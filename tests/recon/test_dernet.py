"""DERnet: the shipped preclinical-2d model, fingerprint checks, training and its interruption."""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.metrics import psnr
from napari_mpi.recon import reconstruct
from napari_mpi.recon.dernet import default_dernet_path, iter_train_dernet
from napari_mpi.simulation import (
    get_preset,
    scanner_grid,
    simulate_measurement,
    simulate_system_matrix,
)
from napari_mpi.simulation.phantoms import digit_phantom


@pytest.fixture(scope="module")
def preset_calibration(tmp_path_factory):
    """The preset's default calibration, written and read back with default settings."""
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)))
    path = tmp_path_factory.mktemp("cal") / "cal.mdf"
    nm.write_mdf(path, sm)
    with nm.read_mdf(path) as f:
        return scanner, f.system_matrix()


def test_shipped_model_reconstructs_test_digits(preset_calibration, shared_data):
    scanner, sm = preset_calibration
    card = json.loads((default_dernet_path() / "card.json").read_text())
    assert card["fingerprint"] and "train dernet" in card["command"]
    assert (default_dernet_path() / "model.pt").stat().st_size < 20_000_000
    mnist = shared_data / "mnist-test10k" / "mnist.npz"
    fine = scanner_grid(scanner, (95, 95))
    scores = []
    for idx in (9000, 9001, 9002):
        phantom = digit_phantom(mnist, fine, index=idx, seed=idx)
        meas = simulate_measurement(
            sm, phantom, 30.0, seed=idx, simulate_on_phantom_grid=True, scanner=scanner
        )
        img = reconstruct(sm, meas.data, "dernet")
        assert img.data.shape == (1, 1, 19, 19) and img.data.min() >= 0
        scores.append(psnr(img, meas.phantom))
    # 29.1 dB here; 28.5 dB on average over test digits 9000-9039 at 30 dB (ADMM default: ~28)
    assert np.mean(scores) > 26


def test_other_system_matrices_are_refused(preset_calibration):
    scanner, sm = preset_calibration
    other = simulate_system_matrix(scanner, scanner_grid(scanner, (15, 15)))
    u = np.ones((1, other.num_rows), np.complex64)
    with pytest.raises(ValueError, match="another system matrix"):
        reconstruct(other, u, "dernet")
    narrow = sm.select_rows(sm.snr >= 100)
    with pytest.raises(ValueError, match="not in this system matrix"):
        reconstruct(narrow, np.ones((1, narrow.num_rows), np.complex64), "dernet")
    with pytest.raises(ValueError, match="rows"):
        reconstruct(sm, np.ones((1, sm.num_rows - 1), np.complex64), "dernet")
    bad = np.ones((1, sm.num_rows), np.complex64)
    bad[0, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reconstruct(sm, bad, "dernet")


def test_training_keeps_the_last_good_checkpoint(tmp_path):
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9)))
    out = tmp_path / "m"
    gen = iter_train_dernet(sm, None, out, epochs=3, batch=32, num_train=64, num_val=16,
                            architecture={"c5": 32})  # fmt: skip
    seen = []
    for step in gen:
        seen.append(step)
        if step.info.get("epoch") == 2:
            break  # the user cancels during the second epoch
    gen.close()
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["epochs_done"] == 1 and card["rows"] == int((sm.snr >= 10).sum())
    u = simulate_measurement(sm, nm.MPIImage(np.ones((1, 1, 9, 9)), sm.fov, sm.center), 30).data
    img = reconstruct(sm, u, "dernet", model=str(out))
    assert img.data.shape == (1, 1, 9, 9)
