"""ADMM-Net: plain non-negative ADMM before training, learns on the shared loop, tied to its
system matrix, refuses a missing model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_mpi.metrics import psnr
from napari_mpi.nn.admmnet import ADMMNet
from napari_mpi.nn.checkpoint import read_card
from napari_mpi.progress import run
from napari_mpi.recon import reconstruct
from napari_mpi.recon.admmnet import iter_train_admmnet
from napari_mpi.recon.learned import normalise_signal
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix


@pytest.fixture(scope="module")
def small_sm():
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9)))


def _admm_nonneg(a: np.ndarray, b: np.ndarray, rho: float, iterations: int) -> np.ndarray:
    """Reference: ADMM for min ||A x - b||^2 / 2 s.t. x >= 0 (unit multiplier steps)."""
    n = a.shape[1]
    k = a.T @ a + rho * np.eye(n)
    z = np.zeros(n)
    u = np.zeros(n)
    for _ in range(iterations):
        x = np.linalg.solve(k, a.T @ b + rho * (z - u))
        z = np.maximum(x + u, 0.0)
        u = u + x - z
    return z


def test_untrained_network_is_nonnegative_admm(small_sm):
    sm = small_sm
    net = ADMMNet(sm.num_rows, sm.grid_shape[1:], stages=6, rho0=0.1).double()
    net.set_operator(sm.matrix)
    net.at, net.evecs, net.evals = net.at.double(), net.evecs.double(), net.evals.double()
    truth = np.zeros(sm.grid_shape[1:])
    truth[3:6, 2:4] = 1.0
    u = (sm.matrix @ truth.ravel())[None]
    x, b_max = normalise_signal(u)
    out = net(torch.from_numpy(x).double()).detach().numpy()[0].ravel()
    a = np.concatenate([sm.matrix.real, sm.matrix.imag])
    b = np.concatenate([u.real, u.imag], axis=1)[0] / b_max[0]
    ref = _admm_nonneg(a, b, 0.1 * np.sum(a**2) / a.shape[1], 6)
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())  # float32 V
    with pytest.raises(ValueError, match="shape"):
        net.set_operator(sm.matrix[:5])
    fresh = ADMMNet(sm.num_rows, sm.grid_shape[1:])
    with pytest.raises(RuntimeError, match="set_operator"):
        fresh(torch.zeros(1, 2, sm.num_rows))


def test_training_improves_on_validation_and_reconstructs(small_sm, tmp_path):
    sm = small_sm
    out = tmp_path / "admmnet"
    card = run(iter_train_admmnet(sm, None, out, epochs=4, batch=16, num_train=96, num_val=24,
                                  stages=4, features=8, lr=3e-3))  # fmt: skip
    assert card["method"] == "admm-net" and card["architecture"]["stages"] == 4
    history = [h["val_mse"] for h in card["history"]]
    assert min(history) < history[0]  # learning moved the penalties and regularisers
    assert (out / "model.pt").stat().st_size < 200_000  # no matrix in the weights
    # reconstruct a measurement of this system matrix with the trained model
    truth = np.zeros(sm.grid_shape)
    truth[0, 3:6, 2:5] = 1.0
    u = (sm.matrix @ truth.ravel())[None]
    img = reconstruct(sm, u, "admm-net", model=str(out))
    assert img.data.shape == (1, *sm.grid_shape) and img.data.min() >= 0
    assert psnr(img.data[0], truth) > 15
    assert read_card(out)["fingerprint"]


def test_shipped_model_reconstructs_a_digit_and_tubes(shared_data):
    """The shipped model (preclinical-2d default calibration, every row, trained on the
    phantom mix): a test digit and two tubes through a 5x finer grid at 30 dB."""
    from napari_mpi.recon.admmnet import default_admmnet_path
    from napari_mpi.simulation import simulate_measurement
    from napari_mpi.simulation.phantoms import digit_phantom, make_phantom

    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)))
    card = read_card(default_admmnet_path())
    assert "train admm-net" in card["command"] and card["rows"] == sm.num_rows
    assert card["data"]["phantom_mix"]["tubes"] > 0
    fine = scanner_grid(scanner, (95, 95))
    mnist = shared_data / "mnist-test10k" / "mnist.npz"
    for phantom, floor in [
        (digit_phantom(mnist, fine, index=9000, seed=9000), 25),
        (make_phantom("two-tubes:gap=3", fine), 18),
    ]:
        meas = simulate_measurement(
            sm, phantom, 30.0, seed=1, simulate_on_phantom_grid=True, scanner=scanner
        )
        img = reconstruct(sm, meas.data, "admm-net")  # the default model
        assert img.data.shape == (1, 1, 19, 19) and img.data.min() >= 0
        assert psnr(img, meas.phantom) > floor


def test_refuses_another_matrix(small_sm, tmp_path):
    sm = small_sm
    u = np.ones((1, sm.num_rows), np.complex64)
    with pytest.raises(ValueError, match="another system matrix"):
        reconstruct(sm, u, "admm-net")  # the shipped model fits the 19 x 19 preset only
    out = tmp_path / "m"
    run(iter_train_admmnet(sm, None, out, epochs=1, batch=16, num_train=32, num_val=8,
                           stages=2, features=4))  # fmt: skip
    scanner = get_preset("preclinical-2d")
    other = simulate_system_matrix(scanner, scanner_grid(scanner, (7, 7)))
    with pytest.raises(ValueError, match=r"another system matrix|not in this system matrix"):
        reconstruct(other, np.ones((1, other.num_rows), np.complex64), "admm-net", model=str(out))
