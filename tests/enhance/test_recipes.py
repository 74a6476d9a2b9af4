"""Training recipes of the 3D enhancement CNNs on the one loop: a tiny seeded run of each lowers
the validation loss and writes a loadable model with its card; CSDNet's two stages, with the
teacher frozen in the second; bad pairs and options are named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from napari_mpi.enhance.recipes import (
    CONFIGS,
    CSDNetConfig,
    EDSR3DConfig,
    RCAN3DConfig,
    RRDB3DConfig,
    UNet3DConfig,
    make_recipe,
)
from napari_mpi.nn.checkpoint import build_model, load_checkpoint
from napari_mpi.nn.enhance3d import NETWORKS
from napari_mpi.nn.training import iter_train
from napari_mpi.progress import run

FAST = {"epochs": 2, "batch": 2, "steps_per_epoch": 4, "lr": 1e-3}
TINY = {
    "unet3d": UNet3DConfig(widths=(4, 8), **FAST),
    "edsr3d": EDSR3DConfig(features=8, blocks=1, **FAST),
    "rcan3d": RCAN3DConfig(features=8, groups=1, blocks=1, **FAST),
    "rrdb3d": RRDB3DConfig(features=8, growth=4, layers=2, **FAST),
}


@pytest.fixture(scope="module")
def pairs():
    """10 sparse bright-spot volumes (12^3) and their copies blurred along z only."""
    rng = np.random.default_rng(0)
    target = (rng.random((10, 12, 12, 12)) > 0.92).astype(np.float32)
    target = gaussian_filter1d(gaussian_filter1d(target, 0.7, axis=2), 0.7, axis=3)
    target /= target.max(axis=(1, 2, 3), keepdims=True)
    degraded = gaussian_filter1d(target, 2.0, axis=1).astype(np.float32)
    return (degraded[:8], target[:8]), (degraded[8:], target[8:])


@pytest.mark.parametrize("method", sorted(TINY))
def test_tiny_training_lowers_val_loss_and_writes_a_model(method, pairs, tmp_path):
    train, val = pairs
    untrained = make_recipe(method, TINY[method], train=train, val=val)
    untrained.device = torch.device("cpu")
    torch.manual_seed(TINY[method].seed)  # as iter_train does: the same initial weights
    list(untrained.prepare())
    untrained.modules["model"].eval()
    with torch.no_grad():
        before = untrained.validate(0)["val_loss"]
    recipe = make_recipe(method, TINY[method], train=train, val=val, data={"source": "test"})
    validated = []
    card = run(iter_train(recipe, tmp_path), lambda p: validated.append(p.info.get("val_loss")))
    losses = [v for v in validated if v is not None]
    assert len(losses) == 2 and losses[-1] < before
    assert card["metrics"]["val_loss"] == min(losses) and np.isfinite(card["metrics"]["val_psnr"])
    state, loaded = load_checkpoint(tmp_path)
    assert loaded["method"] == method and loaded["task"] == "enhance"
    assert loaded["data"]["source"] == "test" and loaded["data"]["train_volumes"] == 8
    assert loaded["data"]["volume_shape_zyx"] == [12, 12, 12]
    net = build_model(NETWORKS[method], state, loaded, tmp_path)
    x = torch.from_numpy(val[0][:1, None])
    with torch.no_grad():
        same = recipe.modules["model"].eval()(x)
        assert torch.allclose(net(x), same, atol=1e-5)


def test_csdnet_two_stages_teacher_frozen_in_the_second(pairs, tmp_path):
    train, val = pairs
    config = CSDNetConfig(widths=(4, 8), teacher_epochs=2, teacher_batch=16, **FAST)
    recipe = make_recipe("csdnet", config, train=train, val=val)
    frozen, infonce = None, []
    gen = iter_train(recipe, tmp_path)
    try:
        while True:
            p = next(gen)
            if p.info.get("stage") == "student" and p.info["phase"] == "training":
                if frozen is None:
                    teacher = recipe.modules["teacher"]
                    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
                    assert not any(q.requires_grad for q in teacher.parameters())
                infonce.append(p.info["infonce"])
    except StopIteration as stop:
        card = stop.value
    assert frozen is not None and len(infonce) == 8 and np.isfinite(infonce).all()
    after = recipe.modules["teacher"].state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # weights and BN statistics
    history = card["history"]
    assert [h["stage"] for h in history] == ["teacher", "teacher", "student", "student"]
    assert history[1]["val_teacher_loss"] < history[0]["val_teacher_loss"]
    assert history[0]["val_loss"] == history[1]["val_loss"]  # the student waits
    assert history[3]["val_loss"] < history[1]["val_loss"]
    state, loaded = load_checkpoint(tmp_path)
    assert loaded["method"] == "csdnet" and loaded["task"] == "enhance"
    assert loaded["architecture"]["class"] == "Student3D"
    assert loaded["teacher_architecture"]["class"] == "Teacher2D"
    assert loaded["training"]["alpha"] == 0.1
    build_model(NETWORKS["csdnet"], state, loaded, tmp_path)


def test_bad_pairs_and_options_are_named(pairs):
    train, val = pairs
    with pytest.raises(ValueError, match="train: degraded and target"):
        make_recipe("unet3d", train=(train[0], train[1][:, :8]), val=val)
    bad = train[0].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="val: NaN"):
        make_recipe("edsr3d", train=train, val=(bad, train[1]))
    with pytest.raises(ValueError, match="method must be one of"):
        make_recipe("esrgan", train=train, val=val)
    with pytest.raises(ValueError, match="loss must be one of"):
        UNet3DConfig(loss="mse").check()
    with pytest.raises(ValueError, match="slice_axis"):
        CSDNetConfig(slice_axis=1).check()
    assert set(CONFIGS) == set(NETWORKS)


class _PairSet:
    """Shaped like napari_mpi.enhance.data.PairSet: inputs, targets and a card."""

    def __init__(self, inputs, targets, split):
        self.inputs, self.targets, self.split = inputs, targets, split

    def card(self):
        return {"split": self.split, "count": len(self.inputs)}


def test_pair_sets_are_accepted_and_their_cards_recorded(pairs, tmp_path):
    train, val = pairs
    config = UNet3DConfig(widths=(4,), epochs=1, batch=4, steps_per_epoch=1)
    recipe = make_recipe("unet3d", config, train=_PairSet(*train, "train"),
                         val=_PairSet(*val, "val"))  # fmt: skip
    card = run(iter_train(recipe, tmp_path))
    assert card["data"]["train"] == {"split": "train", "count": 8}
    assert card["data"]["val"]["split"] == "val"
    with pytest.raises(ValueError, match="val: got the test split"):
        make_recipe("unet3d", config, train=train, val=_PairSet(*val, "test"))


def test_configs_and_recipes_import_without_torch():
    import subprocess
    import sys

    code = "import sys, napari_mpi.enhance.recipes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_input_max_scaling_makes_training_unit_free(pairs, tmp_path):
    train, val = pairs
    config = UNet3DConfig(widths=(4,), epochs=1, batch=4, steps_per_epoch=2)
    cards = []
    for k, factor in enumerate((1.0, 1e-3)):
        scaled = [(a * factor, b * factor) for a, b in (train, val)]
        recipe = make_recipe("unet3d", config, train=scaled[0], val=scaled[1])
        cards.append(run(iter_train(recipe, tmp_path / str(k))))
    a, b = (c["metrics"] for c in cards)
    assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-2)  # float rounding only
    raw = dataclasses.replace(config, scale="none")
    small = make_recipe("unet3d", raw, train=(train[0] * 1e-3, train[1] * 1e-3), val=val)
    assert small.train_pairs[0].max() < 1e-2  # "none" leaves the intensities as given
    assert cards[0]["data"]["network_scale"] == "input-max-gain"
    # the targets are O(1): divided by max(input) and by the median max(target) / max(input)
    recipe = make_recipe("unet3d", config, train=train, val=val)
    ratios = train[1].max(axis=(1, 2, 3)) / train[0].max(axis=(1, 2, 3))
    assert recipe.target_gain == pytest.approx(float(np.median(ratios)), rel=1e-5)
    assert np.median(recipe.train_pairs[1].max(axis=(1, 2, 3))) == pytest.approx(1.0, rel=1e-5)
    assert cards[0]["data"]["target_gain"] == pytest.approx(recipe.target_gain)
    with pytest.raises(ValueError, match="scale must be one of"):
        UNet3DConfig(scale="max").check()
