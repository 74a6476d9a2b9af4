"""The cascaded network: shipped model, both training strategies, the losses, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import napari_mpi as nm
from napari_mpi.cli import main
from napari_mpi.metrics import psnr
from napari_mpi.nn.cascaded import CascadedNet
from napari_mpi.nn.losses import make_loss, ssim
from napari_mpi.progress import run
from napari_mpi.recon import reconstruct
from napari_mpi.recon.cascaded import default_cascaded_path, iter_train_cascaded
from napari_mpi.simulation import (
    get_preset,
    scanner_grid,
    simulate_measurement,
    simulate_system_matrix,
)
from napari_mpi.simulation.phantoms import digit_phantom


@pytest.fixture(scope="module")
def small_sm():
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9)))


def test_shipped_model_reconstructs_test_digits(shared_data):
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)))
    card = json.loads((default_cascaded_path() / "card.json").read_text())
    assert "train cascaded" in card["command"] and card["training"]["loss"] == "l1+ssim"
    assert (default_cascaded_path() / "model.pt").stat().st_size < 10_000_000
    mnist = shared_data / "mnist-test10k" / "mnist.npz"
    fine = scanner_grid(scanner, (95, 95))
    finals, prelims = [], []
    for idx in (9000, 9001, 9002):
        phantom = digit_phantom(mnist, fine, index=idx, seed=idx)
        meas = simulate_measurement(
            sm, phantom, 30.0, seed=idx, simulate_on_phantom_grid=True, scanner=scanner
        )
        img = reconstruct(sm, meas.data, "cascaded")
        assert img.data.shape == (1, 1, 19, 19) and img.data.min() >= 0
        finals.append(psnr(img, meas.phantom))
        prelims.append(
            psnr(reconstruct(sm, meas.data, "cascaded", stage="preliminary"), meas.phantom)
        )
    assert np.mean(finals) > 26  # 27.96 dB here (the mix model; the digits-only one: 29.6)
    assert np.mean(finals) > np.mean(prelims)  # module 2 refines module 1's image


def test_stage_wise_trains_one_module_at_a_time(small_sm, tmp_path, monkeypatch):
    optimisers, frozen = [], {}
    real_adam = torch.optim.Adam

    def spy(params, **kwargs):  # records what each phase trains
        params = list(params)
        if optimisers:  # module 2 starts: remember module 1 as module 1 left it
            frozen.update({id(p): p.detach().clone() for p in optimisers[0]})
        optimisers.append(params)
        return real_adam(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", spy)
    out = tmp_path / "m"
    gen = iter_train_cascaded(
        small_sm,
        None,
        out,
        loss="mse",
        strategy="stage-wise",
        epochs=2,
        batch=16,
        num_train=32,
        num_val=8,
    )
    phases = []
    for step in gen:
        phase = step.info.get("stage")  # the loop's phase is "training", "validating", ...
        if phase and phase not in phases:
            phases.append(phase)
    assert phases == ["module 1", "module 2"] and len(optimisers) == 2
    first, second = optimisers
    assert {id(p) for p in first}.isdisjoint(id(p) for p in second)
    rows = int((small_sm.snr >= 10).sum())
    assert any(tuple(p.shape) == (81, 2 * rows) for p in first)  # the fully connected layer
    for p in first:
        assert torch.equal(p.detach(), frozen[id(p)])  # module 1 untouched while module 2 trains
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["strategy"] == "stage-wise"
    assert card["training"]["phases"] == [["module 1", 1], ["module 2", 1]]


def test_end_to_end_learns_and_interrupting_keeps_the_checkpoint(small_sm, tmp_path):
    out = tmp_path / "m"
    gen = iter_train_cascaded(small_sm, None, out, epochs=4, batch=16, num_train=64, num_val=16)
    val = []
    for step in gen:
        if "val_psnr_db" in step.info:
            val.append(step.info["val_psnr_db"])
        if step.info.get("epoch") == 3 and "val_loss" not in step.info:
            break  # the user cancels during the third epoch
    gen.close()
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["epochs_done"] in (1, 2) and len(val) == 2
    u = simulate_measurement(
        small_sm, nm.MPIImage(np.ones((1, 1, 9, 9)), small_sm.fov, small_sm.center), 30
    ).data
    img = reconstruct(small_sm, u, "cascaded", model=str(out))
    assert img.data.shape == (1, 1, 9, 9) and np.isfinite(img.data).all()


@pytest.mark.parametrize("fresh", [True, False])
def test_fresh_noise_every_epoch(small_sm, tmp_path, monkeypatch, fresh):
    from napari_mpi.recon.training_data import TrainingSet

    calls = []
    original = TrainingSet.redraw_noise
    monkeypatch.setattr(
        TrainingSet,
        "redraw_noise",
        lambda self, rng, snr_range: calls.append(snr_range) or original(self, rng, snr_range),
    )
    out = tmp_path / "m"
    run(
        iter_train_cascaded(
            small_sm, None, out, epochs=3, batch=16, num_train=32, num_val=8, fresh_noise=fresh
        )
    )
    card = json.loads((out / "card.json").read_text())
    assert calls == ([(20.0, 40.0)] * 2 if fresh else [])  # epochs 2 and 3 get new noise
    assert card["data"]["fresh_noise"] is fresh and card["training"]["lr_schedule"] == "cosine"


def test_losses():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.random((4, 12, 12)).astype(np.float32))
    noisy = y + 0.2 * torch.from_numpy(rng.standard_normal((4, 12, 12)).astype(np.float32))
    assert torch.allclose(ssim(y, y), torch.ones(4))
    assert (ssim(noisy, y) < 0.9).all()
    for name in ("mse", "l1", "l1+ssim"):
        fn = make_loss(name)
        assert float(fn(y, y)) == pytest.approx(0.0, abs=1e-6)
        p = noisy.clone().requires_grad_(True)
        value = fn(p, y)
        value.backward()
        assert value > 0 and p.grad is not None and torch.isfinite(p.grad).all()
    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss("ssim-only")


def test_bad_input(small_sm, tmp_path):
    with pytest.raises(ValueError, match="strategy"):
        next(iter_train_cascaded(small_sm, None, tmp_path / "x", strategy="greedy"))
    with pytest.raises(ValueError, match="loss"):
        next(iter_train_cascaded(small_sm, None, tmp_path / "x", loss="huber"))
    with pytest.raises(ValueError, match="lr_schedule"):
        next(iter_train_cascaded(small_sm, None, tmp_path / "x", lr_schedule="step"))
    # the shipped model fits the 19 x 19 preset calibration, not this one
    with pytest.raises(ValueError, match=r"another system matrix|not in this system matrix"):
        reconstruct(small_sm, np.ones((1, small_sm.num_rows), np.complex64), "cascaded")
    bad = np.ones((1, small_sm.num_rows), np.complex64)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reconstruct(small_sm, bad, "cascaded")
    with pytest.raises(ValueError, match="frame selection is empty"):
        reconstruct(small_sm, np.ones((0, small_sm.num_rows), np.complex64), "cascaded")


def test_tikhonov_start_gives_an_image_before_training(small_sm):
    from napari_mpi.recon.learned import normalise_signal
    from napari_mpi.recon.pinv import reconstruction_matrix

    net = CascadedNet(small_sm.num_rows, (9, 9), output_scale=0.5).eval()
    r = reconstruction_matrix(small_sm, "tikhonov", 0.01, 0.0)
    net.module1.init_tikhonov(torch.from_numpy(r), 0.5)
    phantom = nm.MPIImage(np.zeros((1, 1, 9, 9)), small_sm.fov, small_sm.center)
    phantom.data[0, 0, 4, 2] = 1.0
    u = simulate_measurement(small_sm, phantom, None).data
    x, b = normalise_signal(u)
    with torch.no_grad():
        prelim, final = net(torch.from_numpy(x))
    image = final.numpy()[0] * b[0]
    assert np.unravel_index(np.argmax(image), image.shape) == (4, 2)
    np.testing.assert_allclose(final.numpy(), np.maximum(prelim.numpy(), 0), atol=1e-6)
    with pytest.raises(ValueError, match="init_tikhonov"):
        net.module1.init_tikhonov(torch.zeros(3, 3), 1.0)


def test_cli_trains_cascaded(small_sm, tmp_path, capsys):
    cal = tmp_path / "cal.mdf"
    nm.write_mdf(cal, small_sm)
    out = tmp_path / "casc"
    args = [
        "train",
        "cascaded",
        "--calibration",
        str(cal),
        "--epochs",
        "1",
        "--num-train",
        "16",
        "--num-val",
        "4",
        "--batch",
        "8",
        "--loss",
        "mse",
        "--strategy",
        "stage-wise",
        "--stage1-epochs",
        "1",
        "-o",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["loss"] == "mse" and "train cascaded" in card["command"]
    assert "cascaded network (stage-wise, mse loss)" in capsys.readouterr().out
    assert main([*args[:2], "-o", str(tmp_path / "y"), "--quiet"]) != 0
    assert "--calibration" in capsys.readouterr().err
