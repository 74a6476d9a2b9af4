"""esrgan3d: the 3D patch discriminator, the relativistic average GAN and feature-matching
losses, the GAN phase on the shared loop (both players step, every term logged, the generator
written as an RRDB3D), starting from an rrdb3d model, and its options and bad folders named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

import napari_mpi as nm
from napari_mpi.cli import main
from napari_mpi.enhance.recipe_configs import ESRGAN3DConfig, RRDB3DConfig, UNet3DConfig
from napari_mpi.enhance.recipes import make_recipe
from napari_mpi.nn.checkpoint import build_model, load_checkpoint
from napari_mpi.nn.enhance3d import NETWORKS, RRDB3D
from napari_mpi.nn.esrgan3d import Discriminator3D, feature_matching, relativistic_losses
from napari_mpi.nn.training import iter_train
from napari_mpi.progress import run

GEN = {"features": 8, "growth": 4, "layers": 2}
FAST = {"epochs": 2, "batch": 2, "steps_per_epoch": 3}


@pytest.fixture(scope="module")
def pairs():
    """10 sparse bright-spot volumes (12^3) and their copies blurred along z only."""
    rng = np.random.default_rng(1)
    target = (rng.random((10, 12, 12, 12)) > 0.92).astype(np.float32)
    target = gaussian_filter1d(gaussian_filter1d(target, 0.7, axis=2), 0.7, axis=3)
    target /= target.max(axis=(1, 2, 3), keepdims=True)
    degraded = gaussian_filter1d(target, 2.0, axis=1).astype(np.float32)
    return (degraded[:8], target[:8]), (degraded[8:], target[8:])


@pytest.fixture(scope="module")
def rrdb_model(pairs, tmp_path_factory):
    """A tiny trained rrdb3d model folder (the pixel-loss phase)."""
    out = tmp_path_factory.mktemp("rrdb")
    recipe = make_recipe("rrdb3d", RRDB3DConfig(**GEN, **FAST), train=pairs[0], val=pairs[1])
    run(iter_train(recipe, out))
    return out


def test_discriminator_gives_patch_logits_and_stage_features():
    torch.manual_seed(0)
    d = Discriminator3D(features=4, levels=3)
    logits, feats = d(torch.rand(2, 1, 32, 32, 32), features=True)
    assert logits.shape == (2, 1, 4, 4, 4)
    assert [f.shape[1:] for f in feats] == [(8, 16, 16, 16), (16, 8, 8, 8), (32, 4, 4, 4)]
    assert d(torch.rand(1, 1, 9, 11, 10)).shape[:2] == (1, 1)  # odd sides
    with pytest.raises(ValueError, match="features and levels"):
        Discriminator3D(levels=0)


def test_relativistic_losses_reward_each_player_for_its_own_goal():
    real, fake = torch.full((4, 1, 2, 2, 2), 3.0), torch.full((4, 1, 2, 2, 2), -3.0)
    d_good, g_bad = relativistic_losses(real, fake)
    d_bad, g_good = relativistic_losses(fake, real)  # the generator fools D
    assert d_good < 0.01 < g_bad and g_good < 0.01 < d_bad
    assert torch.isclose(d_good, g_good) and torch.isclose(g_bad, d_bad)
    tie = relativistic_losses(torch.zeros(2, 1), torch.zeros(2, 1))
    assert all(torch.isclose(v, torch.tensor(np.log(2.0), dtype=v.dtype)) for v in tie)
    # the generator's loss moves the generated logits upwards (relative to the real ones)
    f = torch.zeros(3, 1, requires_grad=True)
    relativistic_losses(torch.ones(3, 1), f)[1].backward()
    assert (f.grad < 0).all()


def test_feature_matching_is_zero_on_equal_features_and_leaves_the_target_alone():
    a = [torch.rand(2, 3, 4, 4, 4), torch.rand(2, 5, 2, 2, 2)]
    assert feature_matching(a, [t.clone() for t in a]) == 0
    real = [t.clone().requires_grad_(True) for t in a]
    fake = [(t + 0.5).requires_grad_(True) for t in a]
    loss = feature_matching(real, fake)
    assert torch.isclose(loss, torch.tensor(0.5))
    loss.backward()
    assert real[0].grad is None and fake[0].grad is not None
    with pytest.raises(ValueError, match="stages"):
        feature_matching(a, a[:1])


def test_gan_phase_steps_both_players_logs_every_term_and_writes_the_generator(
    pairs, rrdb_model, tmp_path
):
    config = ESRGAN3DConfig(**GEN, **FAST, init_from=str(rrdb_model), d_features=4, d_levels=2)
    recipe = make_recipe("esrgan3d", config, train=pairs[0], val=pairs[1], data={"source": "t"})
    steps, start = [], {}

    def seen(p):
        if p.info.get("phase") == "training" and "loss_d" in p.info:
            if not start:
                start.update({k: v.clone() for k, v in
                              recipe.modules["discriminator"].state_dict().items()})  # fmt: skip
            steps.append(p.info)

    card = run(iter_train(recipe, tmp_path, half=recipe.half), seen)
    assert len(steps) == 6
    for key in ("loss", "loss_pixel", "loss_adv", "loss_fm", "loss_d"):
        assert all(np.isfinite(s[key]) for s in steps), key
    s = steps[-1]
    want = s["loss_pixel"] + 5e-3 * s["loss_adv"] + 1e-2 * s["loss_fm"]
    assert s["loss"] == pytest.approx(want, rel=1e-5)
    after = recipe.modules["discriminator"].state_dict()
    assert any(not torch.equal(start[k], after[k]) for k in start)  # D was trained
    history = card["history"]
    assert len(history) == 2 and all(0 <= h["val_d_accuracy"] <= 1 for h in history)
    assert card["metrics"]["val_loss"] == min(h["val_loss"] for h in history)
    adv = card["adversarial"]
    assert adv["initial_model"] == str(rrdb_model) and adv["initial_card"]["method"] == "rrdb3d"
    assert adv["discriminator"]["class"] == "Discriminator3D"
    assert "feature matching" in adv["perceptual"]
    state, loaded = load_checkpoint(tmp_path)
    assert loaded["method"] == "esrgan3d" and loaded["weights_dtype"] == "float16"
    assert loaded["architecture"]["class"] == "RRDB3D"
    net = build_model(NETWORKS["esrgan3d"], state, loaded, tmp_path)
    assert isinstance(net, RRDB3D)
    assert not any("discriminator" in k for k in state)


def test_generator_starts_from_the_rrdb3d_model(pairs, rrdb_model):
    config = ESRGAN3DConfig(**GEN, **FAST, init_from=str(rrdb_model))
    recipe = make_recipe("esrgan3d", config, train=pairs[0], val=pairs[1])
    recipe.device = torch.device("cpu")
    list(recipe.prepare())
    state, card = load_checkpoint(rrdb_model)
    rrdb = build_model(RRDB3D, state, card, rrdb_model)
    x = torch.from_numpy(pairs[1][0][:1, None])
    with torch.no_grad():
        assert torch.allclose(recipe.modules["model"].eval()(x), rrdb(x), atol=1e-6)
    scratch = make_recipe("esrgan3d", ESRGAN3DConfig(**GEN, **FAST, init_from=""),
                          train=pairs[0], val=pairs[1])  # fmt: skip
    scratch.device = torch.device("cpu")
    list(scratch.prepare())
    assert scratch.initial_model is None


def test_bad_init_folders_and_options_are_named(pairs, rrdb_model, tmp_path):
    def prepared(**kw):
        recipe = make_recipe("esrgan3d", ESRGAN3DConfig(**{**GEN, **FAST, **kw}),
                             train=pairs[0], val=pairs[1])  # fmt: skip
        recipe.device = torch.device("cpu")
        return list(recipe.prepare())

    with pytest.raises(ValueError, match="architecture"):
        prepared(init_from=str(rrdb_model), features=12)
    unet = tmp_path / "unet"
    config = UNet3DConfig(widths=(4,), epochs=1, batch=2, steps_per_epoch=1)
    run(iter_train(make_recipe("unet3d", config, train=pairs[0], val=pairs[1]), unet))
    with pytest.raises(ValueError, match=r"is a 'unet3d' model; esrgan3d starts from"):
        prepared(init_from=str(unet))
    with pytest.raises(ValueError, match=r"init_from: .*nowhere"):
        prepared(init_from=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="adv_weight must be >= 0"):
        ESRGAN3DConfig(adv_weight=-1).check()
    with pytest.raises(ValueError, match="all 0"):
        ESRGAN3DConfig(pixel_weight=0, adv_weight=0, feature_weight=0).check()
    with pytest.raises(ValueError, match="d_lr must be a positive"):
        ESRGAN3DConfig(d_lr=0).check()
    with pytest.raises(ValueError, match="d_levels must be >= 1"):
        ESRGAN3DConfig(d_levels=0).check()
    with pytest.raises(ValueError, match=r"esrgan3d: needs an? ESRGAN3DConfig"):
        make_recipe("esrgan3d", RRDB3DConfig(), train=pairs[0], val=pairs[1])


def test_cli_trains_esrgan3d_and_the_registry_applies_it(tmp_path):
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter

    blobs = gaussian_filter((rng.random((7, 28, 28, 28)) > 0.985) * 1.0, (0, 1, 1, 1))
    vols = (255 * blobs / blobs.max(axis=(1, 2, 3), keepdims=True)).astype(np.uint8)
    path = tmp_path / "vessels.npz"
    np.savez(path, train_images=vols[:5], val_images=vols[5:],
             test_images=np.full((1, 28, 28, 28), np.nan, dtype=np.float32))  # fmt: skip
    out = tmp_path / "esrgan"
    argv = ["train", "esrgan3d", "--volumes", str(path), "--train-volumes", "5",
            "--val-volumes", "2", "--epochs", "1", "--steps-per-epoch", "2", "--batch", "2",
            "--features", "8", "--growth", "4", "--layers", "2", "--init-from", "",
            "--d-features", "4", "--degradation", "z_step=3e-3,snr_db=30", "-o", str(out),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    from napari_mpi.enhance import Degradation
    from napari_mpi.grid import Grid
    from napari_mpi.simulation.phantoms import vessel_phantom

    grid = Grid((20,) * 3, (20e-3,) * 3, (0.0, 0.0, 0.0))
    scan = Degradation.parse("z_step=3e-3,snr_db=30").apply(vessel_phantom(grid, seed=2), 1)
    result = nm.enhance(scan, "esrgan3d", model=str(out))
    assert result.data.shape == scan.data.shape and np.isfinite(result.data).all()
    assert result.metadata["model_card"]["method"] == "esrgan3d"
    with pytest.raises(ValueError, match="not 'rrdb3d'"):
        nm.enhance(scan, "rrdb3d", model=str(out))
