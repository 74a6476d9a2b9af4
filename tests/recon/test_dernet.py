"""DERnet: the shipped preclinical-2d model, fingerprint checks, training and its interruption."""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.metrics import psnr
from napari_mpi.progress import run
from napari_mpi.recon import reconstruct
from napari_mpi.recon.dernet import default_dernet_path, iter_train_dernet, ridge_initialise
from napari_mpi.recon.learned import normalise_signal
from napari_mpi.recon.training_data import make_training_set
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
    # 30.7 dB here; 29.8 dB on average over test digits 9000-9039 at 30 dB (ADMM default: 27.7)
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


@pytest.fixture(scope="module")
def small_sm():
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9)))


def test_ridge_start_is_the_regularised_linear_fit(small_sm):
    import torch

    from napari_mpi.nn.dernet import DERnet

    sm = small_sm.select_rows(small_sm.snr >= 10)
    train = make_training_set(sm, None, 300, split="train", seed=0)
    val = make_training_set(sm, None, 60, split="val", seed=0)
    (x, b), (xv, bv) = normalise_signal(train.measurements), normalise_signal(val.measurements)
    y, yv = train.phantoms[:, 0] / b[:, None, None], val.phantoms[:, 0] / bv[:, None, None]
    torch.manual_seed(0)
    net = DERnet(sm.num_rows, (9, 9), c5=32, output_scale=0.5).eval()
    untouched = net.fc[1].weight[81:].clone()
    info = ridge_initialise(net, train, val)
    assert info["kind"] == "ridge" and info["relative_lambda"] in (1e-8, 1e-7, 1e-6, 1e-5)
    # the same fit, written out independently: (F^T F + lam I) W = F^T Y
    feats = x.reshape(len(x), -1).astype(np.float64)
    gram = feats.T @ feats
    lam = info["relative_lambda"] * np.linalg.eigvalsh(gram).max()
    w = np.linalg.solve(gram + lam * np.eye(len(gram)), feats.T @ y.reshape(len(y), -1) / 0.5)
    with torch.no_grad():
        features = net.fc(net.signal(torch.from_numpy(xv)).flatten(1))
    first = features[:, :81].numpy()
    expected = xv.reshape(len(xv), -1) @ w
    assert np.abs(first - expected).max() < 1e-3 * np.abs(expected).max()
    assert torch.equal(net.fc[1].weight[81:], untouched)  # other channels keep their start
    # its reported validation PSNR is that of the clipped linear estimate
    est = np.maximum(expected * 0.5, 0)
    target = yv.reshape(len(yv), -1)
    mse = np.mean((est - target) ** 2, axis=1)
    psnr_db = np.mean(10 * np.log10(target.max(axis=1) ** 2 / mse))
    assert info["val_psnr_db"] == pytest.approx(psnr_db, abs=0.05) and psnr_db > 15
    with pytest.raises(ValueError, match="c1 >= 2"):
        ridge_initialise(DERnet(sm.num_rows, (9, 9), c1=1, c5=32), train, val)
    with pytest.raises(ValueError, match="bands must be in"):
        ridge_initialise(net, train, val, bands=5)


def test_ridge_bands_fit_one_channel_per_snr_band(small_sm):
    import torch

    from napari_mpi.nn.dernet import DERnet

    sm = small_sm.select_rows(small_sm.snr >= 10)
    train = make_training_set(sm, None, 300, split="train", seed=0)
    val = make_training_set(sm, None, 60, split="val", seed=0)
    net = DERnet(sm.num_rows, (9, 9), c5=32, output_scale=0.5).eval()
    info = ridge_initialise(net, train, val, bands=4)
    assert info["snr_bands_db"] == [[20, 25], [25, 30], [30, 35], [35, 40]]
    # quieter bands need less regularisation and give better linear images
    assert info["relative_lambda"][0] >= info["relative_lambda"][-1]
    assert info["val_psnr_db"][-1] > info["val_psnr_db"][0] + 1
    x, _ = normalise_signal(train.measurements[:5])
    with torch.no_grad():
        features = net.fc(net.signal(torch.from_numpy(x)).flatten(1)).view(5, 4, 81)
    # four different linear images of the same object
    assert not torch.allclose(features[:, 0], features[:, 3], rtol=0.05)
    assert torch.corrcoef(torch.stack([features[0, 0], features[0, 3]]))[0, 1] > 0.8


def test_ridge_start_and_fresh_phantoms_in_training(small_sm, tmp_path, monkeypatch):
    import napari_mpi.recon.signal_training as learned

    draws = []
    original = learned.iter_training_set

    def spy(*args, **kwargs):
        draws.append((kwargs.get("split"), kwargs.get("draw", 0)))
        return original(*args, **kwargs)

    monkeypatch.setattr(learned, "iter_training_set", spy)
    out = tmp_path / "m"
    options = {"init": "ridge-bands", "fresh_phantoms": True, "architecture": {"c5": 32}}
    gen = iter_train_dernet(
        small_sm, None, out, epochs=3, batch=32, num_train=96, num_val=32, **options
    )
    card = run(gen)
    assert draws == [("train", 0), ("val", 0), ("train", 1), ("train", 2)]
    assert card["data"]["fresh_phantoms"] is True and card["training"]["init"] == "ridge-bands"
    assert card["initialisation"]["kind"] == "ridge-bands"
    assert min(card["initialisation"]["val_psnr_db"]) > 15
    with pytest.raises(ValueError, match="init must be one of"):
        run(iter_train_dernet(small_sm, None, out, init="zeros"))


def test_training_snr_range(small_sm, tmp_path, monkeypatch):
    from napari_mpi.recon.training_data import TrainingSet

    redraws = []
    original = TrainingSet.redraw_noise

    def spy(self, rng, snr_range=(20.0, 40.0)):
        redraws.append(snr_range)
        return original(self, rng, snr_range)

    monkeypatch.setattr(TrainingSet, "redraw_noise", spy)
    opts = {"epochs": 2, "batch": 32, "num_train": 96, "num_val": 32, "init": "ridge",
            "architecture": {"c5": 32}}  # fmt: skip
    quiet = run(iter_train_dernet(small_sm, None, tmp_path / "q", snr_range=(50, 50), **opts))
    loud = run(iter_train_dernet(small_sm, None, tmp_path / "l", snr_range=(0, 0), **opts))
    assert quiet["data"]["snr_db"] == [50.0, 50.0] and loud["data"]["snr_db"] == [0.0, 0.0]
    # the validation pairs carry the range's noise: the linear start fits quiet pairs far better
    assert quiet["initialisation"]["val_psnr_db"] > loud["initialisation"]["val_psnr_db"] + 3
    assert redraws == [(50.0, 50.0), (0.0, 0.0)]  # the second epoch's new noise
    opts["init"] = "ridge-bands"
    bands = run(iter_train_dernet(small_sm, None, tmp_path / "b", snr_range=(10, 30), **opts))
    assert bands["initialisation"]["snr_bands_db"] == [[10, 15], [15, 20], [20, 25], [25, 30]]
    for bad in [(30, 20), (float("nan"), 30)]:
        with pytest.raises(ValueError, match="snr_range must be"):
            run(iter_train_dernet(small_sm, None, tmp_path / "z", snr_range=bad))
    assert not (tmp_path / "z").exists()


def test_training_continues_from_a_model(small_sm, tmp_path):
    import torch

    from napari_mpi.nn.checkpoint import load_checkpoint

    first = tmp_path / "first"
    run(iter_train_dernet(small_sm, None, first, snr_threshold=3, epochs=1, batch=32,
                          num_train=64, num_val=16, architecture={"c1": 4, "c5": 32}))  # fmt: skip
    start, start_card = load_checkpoint(first)
    more = tmp_path / "more"
    # a vanishing learning rate: the continued model keeps the first one's weights, rows,
    # architecture and output scale (whatever snr_threshold says)
    options = {"batch": 32, "num_train": 64, "num_val": 16, "lr": 1e-12, "init_from": first}
    card = run(iter_train_dernet(small_sm, None, more, epochs=1, **options))
    state, _ = load_checkpoint(more)
    assert torch.allclose(state["fc.1.weight"], start["fc.1.weight"], atol=1e-6)
    assert [list(k) for k in card["row_keys"]] == start_card["row_keys"]
    assert card["snr_threshold"] == 3
    assert card["architecture"] == start_card["architecture"]
    assert card["initialisation"]["kind"] == "from" and card["training"]["init"] == "from"
    assert card["initialisation"]["model"] == str(first)
    # the dropout rates may change on the way (no weights depend on them), layer sizes may not
    options["architecture"] = {"dropout0": 0.0, "dropout1": 0.0, "c1": 4}
    card = run(iter_train_dernet(small_sm, None, tmp_path / "nodrop", epochs=1, **options))
    assert card["architecture"] == {**start_card["architecture"], "dropout0": 0, "dropout1": 0}
    options["architecture"] = {"c5": 64}
    with pytest.raises(ValueError, match=r"layer sizes \{'c5': 32\}.*only the dropout"):
        run(iter_train_dernet(small_sm, None, tmp_path / "wider", epochs=1, **options))
    assert not (tmp_path / "wider").exists()
    scanner = get_preset("preclinical-2d")
    other = simulate_system_matrix(scanner, scanner_grid(scanner, (7, 7)))
    with pytest.raises(ValueError, match=r"not in this system matrix|another system matrix"):
        run(iter_train_dernet(other, None, tmp_path / "x", epochs=1, init_from=first))
    cascaded_card = json.loads((first / "card.json").read_text())
    cascaded_card["method"] = "cascaded"
    (first / "card.json").write_text(json.dumps(cascaded_card))
    with pytest.raises(ValueError, match="not a dernet model"):
        run(iter_train_dernet(small_sm, None, tmp_path / "y", epochs=1, init_from=first))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_inference_form_gives_the_same_images(preset_calibration):
    """DERnetInference (conv folded into the FC layer, BN folded, channels last) against the
    plain network in eval mode, with non-trivial batch-norm statistics and biases."""
    import torch

    from napari_mpi.nn.dernet import DERnet, DERnetInference
    from napari_mpi.recon.dernet import load_dernet

    torch.manual_seed(0)
    net = DERnet(40, (7, 9), c1=3, c5=32, output_scale=0.5)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(0.0, 0.3)
    net.eval()
    state = torch.get_rng_state()
    fast = net.for_inference()
    assert torch.equal(torch.get_rng_state(), state)  # loading a model draws no random number
    assert isinstance(fast, DERnetInference)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    x = torch.randn(16, 2, 40)
    with torch.no_grad():
        ref, out = net(x), fast(x)
    assert ref.abs().max() > 0.01  # a real output, not ReLU zeros
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    assert net.training is False and fast.fc_weight.shape == net.fc[1].weight.shape
    # the shipped model is loaded in that form
    loaded, _, _ = load_dernet(preset_calibration[1])
    assert isinstance(loaded, DERnetInference)
