"""DC_GAN end to end: its networks and losses, training from the CLI through the shared loop
(every loss term logged, resumable to the same state, a cancel keeps the last good model), and
the registered method on 2D images and 3D volumes slice by slice, with every bad input and
mismatched model refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import napari_mpi as nm
from napari_mpi.cli import main
from napari_mpi.enhance.dcgan import AXES, MIN_SIDE, load_dcgan
from napari_mpi.enhance.dcgan_config import DCGANConfig, parse_layers
from napari_mpi.enhance.dcgan_recipe import iter_train_dcgan
from napari_mpi.enhance.unpaired import image_grid
from napari_mpi.image import MPIImage
from napari_mpi.nn.dcgan import (
    PatchDiscriminator,
    ProjectionHeads,
    ResnetGenerator,
    lsgan,
    patch_nce,
    sample_patches,
)
from napari_mpi.recon.registry import get_method, methods

TINY = ["--train-images", "8", "--val-images", "2", "--epochs", "2", "--steps-per-epoch", "2",
        "--batch", "2", "--crop", "32", "--width", "4", "--blocks", "2", "--d-width", "8",
        "--y-iterations", "5", "--patches", "16", "--head-width", "16"]  # fmt: skip


def tiny_config(**changes) -> DCGANConfig:
    values = dict(
        train_images=8,
        val_images=2,
        epochs=2,
        steps_per_epoch=2,
        batch=2,
        crop=32,
        width=4,
        blocks=2,
        d_width=8,
        y_iterations=5,
        patches=16,
        head_width=16,
    )
    values.update(changes)  # fmt: skip
    return DCGANConfig(**values)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("dcgan") / "model"
    assert main(["train", "dcgan", *TINY, "-o", str(out), "--quiet"]) == 0
    return out


def image_2d(values: np.ndarray, pixel: float = 20e-3 / 101) -> MPIImage:
    ny, nx = values.shape[-2:]
    return MPIImage(values.reshape(-1, 1, ny, nx).astype(np.float32),
                    np.array([0.0, ny * pixel, nx * pixel]), np.zeros(3))  # fmt: skip


def blob(size: int = 101) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return np.exp(-((x - size / 2) ** 2 + (y - size / 3) ** 2) / 40.0)


# -- networks --------------------------------------------------------------------------------
def test_the_generator_keeps_any_image_size_and_its_range():
    g = ResnetGenerator(width=4, blocks=2)
    for shape in ((1, 1, 101, 101), (2, 1, 37, 50)):
        y = g(torch.rand(shape) * 2 - 1)
        assert y.shape == shape and y.abs().max() <= 1
    feats = g.encode(torch.rand(1, 1, 40, 40), g.default_nce_layers())
    assert [f.shape[1] for f in feats] == [g.feature_channels[i] for i in g.default_nce_layers()]
    assert g.default_nce_layers() == (0, 1, 2, 3, 4)
    assert PatchDiscriminator(8, 3)(torch.rand(2, 1, 64, 64)).shape[:2] == (2, 1)
    with pytest.raises(ValueError, match="width and blocks"):
        ResnetGenerator(width=0)


def test_patch_nce_is_low_for_matching_patches_and_high_for_shuffled_ones():
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, 6, 6)]
    keys, ids = sample_patches(feats, 20)
    heads = ProjectionHeads([8], 16)
    same = patch_nce(heads(keys), heads(keys), tau=0.07)
    shuffled = [k[:, torch.randperm(k.shape[1])] for k in keys]
    other = patch_nce(heads(shuffled), heads(keys), tau=0.07)
    assert same < 0.5 * other
    queries, _ = sample_patches(feats, 0, ids)  # the same locations
    torch.testing.assert_close(queries[0], keys[0])
    assert lsgan(torch.ones(3), True) == 0 and lsgan(torch.zeros(3), False) == 0
    assert lsgan(torch.zeros(3), True) == 1


def test_nce_layers_parse_and_bad_configs_are_refused_by_name():
    assert parse_layers("") is None and parse_layers("4, 0,2") == (0, 2, 4)
    for changes, field in (({"nce_layers": "0,9"}, "nce_layers"), ({"nce_layers": "a"},
                           "nce_layers"), ({"crop": 8}, "crop"), ({"tau": 0.0}, "tau"),
                           ({"lambda_con": -1.0}, "lambda_con"), ({"beta1": 1.0}, "beta1"),
                           ({"snr_range": (40.0, 30.0)}, "snr_range"),
                           ({"phantom_scale": (0.0, 1.0)}, "phantom_scale"),
                           ({"phantom_scale": (0.8, 0.5)}, "phantom_scale"),
                           ({"phantom_scale": (0.5, 1.5)}, "phantom_scale"),
                           ({"val_snr2_db": 40.0}, "val_snr2_db"),
                           ({"phantom_shift": 1.0}, "phantom_shift"),
                           ({"identity": "cycle"}, "identity"),
                           ({"blur": "relaxation_time=-1"}, "relaxation_time")):  # fmt: skip
        with pytest.raises(ValueError, match=field):
            tiny_config(**changes).check()


# -- training --------------------------------------------------------------------------------
def test_cli_training_writes_a_card_with_every_loss_term_and_the_scan(model):
    card = json.loads((model / "card.json").read_text())
    assert card["method"] == "dcgan" and card["task"] == "enhance" and card["dimensions"] == 2
    assert card["command"].startswith("napari-mpi train dcgan")
    assert card["data"]["blur"]["relaxation_time"] == pytest.approx(1e-6)
    assert card["data"]["source"] == "procedural" and card["data"]["y_gain"] > 1
    assert card["data"]["train_x"] == card["data"]["train_y"] == 4
    assert card["data"]["pixel_size_m"] == pytest.approx(20e-3 / 101)
    assert card["architecture"]["width"] == 4 and card["architecture"]["d_width"] == 8
    assert np.isfinite(card["metrics"]["val_psnr"]) and 0 < card["metrics"]["val_nrmse"]
    assert (model / "last.pt").is_file()
    state = torch.load(model / "model.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("identity", ["nce", "l1"])
def test_every_loss_term_is_reported_at_every_step(tmp_path, identity):
    config = tiny_config(epochs=1, identity=identity)
    steps = [p.info for p in iter_train_dcgan(config, tmp_path / "m")
             if p.info.get("phase") == "training"]  # fmt: skip
    assert len(steps) == 2
    for info in steps:
        assert {"loss", "loss_d", "loss_gan", "loss_con", "loss_idt"} <= set(info)
        assert all(np.isfinite(info[k]) for k in ("loss", "loss_d", "loss_con"))


def test_a_resumed_training_continues_exactly_where_it_stopped(tmp_path):
    def history(folder):
        return json.loads((folder / "card.json").read_text())["history"]

    from napari_mpi.progress import run

    torch.set_num_threads(1)
    run(iter_train_dcgan(tiny_config(epochs=2), tmp_path / "straight"))
    work = iter_train_dcgan(tiny_config(epochs=2), tmp_path / "split")
    for step in work:  # interrupted as epoch 2 starts: last.pt holds epoch 1
        if step.info.get("phase") == "training" and step.info.get("epoch") == 2:
            work.close()
            break
    run(iter_train_dcgan(tiny_config(epochs=2, resume=True), tmp_path / "split"))
    last = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    for key, value in straight["modules"]["model"].items():
        torch.testing.assert_close(last["modules"]["model"][key], value, rtol=1e-4, atol=1e-5)
    assert json.loads(last["json"])["epoch"] == 2
    assert len(history(tmp_path / "straight")) >= 1


def test_a_cancelled_training_keeps_the_last_validated_model(tmp_path):
    work = iter_train_dcgan(tiny_config(epochs=3), tmp_path / "m")
    for step in work:
        if step.info.get("phase") == "training" and step.info.get("epoch") == 2:
            work.close()
            break
    _net, card, _ = load_dcgan(tmp_path / "m", "cpu")
    assert card["training"]["epochs_done"] == 1
    assert nm.enhance(image_2d(blob(40)), "dcgan", model=str(tmp_path / "m")).data.shape == (
        1, 1, 40, 40)  # fmt: skip


def _crops_of(image: np.ndarray, draws: int = 64, **changes) -> list[np.ndarray]:
    """``draws`` whole-image crops of ``image`` as the recipe augments them."""
    from types import SimpleNamespace

    from napari_mpi.enhance.dcgan_recipe import DCGANRecipe

    side = image.shape[0]
    domains = SimpleNamespace(x=image[None], y=image[None], y_gain=1.0, card={})
    val = (image[None], image[None])
    recipe = DCGANRecipe(tiny_config(crop=side, batch=draws, **changes), domains, val)
    recipe.rngs["data"] = np.random.default_rng(0)
    return [(c[0] + 1) / 2 for c in recipe._crops(domains.x)]


def test_augmentation_keeps_the_scan_direction_unless_turns_are_asked_for():
    # an image with no symmetry: every transform of it is told apart
    image = np.zeros((32, 32), dtype=np.float32)
    image[4:9, 3:20] = 1.0
    image[12:28, 22:25] = 0.5
    kept = {"same": image, "y flip": image[::-1]}

    def kind(crop):
        return next((k for k, v in kept.items() if np.array_equal(crop, v)), "other")

    default = [kind(c) for c in _crops_of(image)]
    # only the flip across the scan direction (y): the relaxation tail stays along +x
    assert set(default) == {"same", "y flip"}
    turned = [kind(c) for c in _crops_of(image, augment_turns=True)]
    assert "other" in turned  # x flips and 90-degree turns appear
    assert {kind(c) for c in _crops_of(image, augment=False)} == {"same"}


def test_the_moving_average_is_validated_and_written(tmp_path):
    with pytest.raises(ValueError, match="ema"):
        tiny_config(ema=1.0).check()
    torch.set_num_threads(1)
    from napari_mpi.progress import run

    run(iter_train_dcgan(tiny_config(epochs=1, ema=0.5), tmp_path / "m"))
    last = torch.load(tmp_path / "m" / "last.pt", weights_only=True)
    written = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    raw, average = last["modules"]["model"], last["modules"]["ema"]
    assert json.loads(last["json"])["extra"]["updates"] == 2
    differs = False
    for key, value in average.items():
        if value.is_floating_point():
            torch.testing.assert_close(written[key].float(), value, rtol=1e-2, atol=1e-3)
            differs |= not torch.allclose(value, raw[key])
    assert differs  # the average is not the raw G


def test_validation_at_two_snrs_scores_both_and_records_each(tmp_path):
    torch.set_num_threads(1)
    from napari_mpi.progress import run

    card = run(iter_train_dcgan(tiny_config(epochs=1, val_snr2_db=20.0,
                                            phantom_scale=(0.5, 0.8), phantom_shift=0.1),
                                tmp_path / "m"))  # fmt: skip
    m = card["metrics"]
    assert card["data"]["val_images"] == 4  # val_images at each of the two SNRs
    assert card["data"]["val"].endswith("at 40 and 20 dB")
    assert card["data"]["phantom_scale"] == [0.5, 0.8] and card["data"]["phantom_shift"] == 0.1
    # the score is the mean over both sets, each set's own mean recorded beside it
    assert m["val_psnr"] == pytest.approx((m["val_psnr_40dB"] + m["val_psnr_20dB"]) / 2)
    assert m["val_psnr_40dB"] != m["val_psnr_20dB"]
    assert {"val_ssim_40dB", "val_ssim_20dB"} <= set(m)


def test_training_refuses_a_missing_or_wrong_phantom_file(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "dcgan", "--phantoms", str(tmp_path / "no.npz"), "-o", str(out)]) != 0
    assert "no.npz: no such file" in capsys.readouterr().err
    assert main(["train", "dcgan", "--blur", "gradient=-2", "-o", str(out)]) != 0
    assert "XSpaceBlur.gradient" in capsys.readouterr().err and not out.exists()


# -- the registered method -------------------------------------------------------------------
def test_dcgan_is_a_registered_learned_enhancement_method_and_trainable():
    m = get_method("dcgan", task="enhance")
    assert m.kind == "learned" and "dcgan" in [x.name for x in methods("enhance")]
    assert [p.name for p in m.params] == ["model", "device", "axis", "allow_mismatch"]
    assert {p.name: p for p in m.params}["axis"].choices == AXES
    from napari_mpi.nn.trainers import get_trainable

    assert get_trainable("dcgan").task == "enhance"


def test_a_2d_image_keeps_its_grid_and_frames(model):
    image = image_2d(np.stack([blob(), 0.5 * blob()]))
    out = nm.enhance(image, "dcgan", model=str(model))
    assert out.data.shape == image.data.shape and out.data.min() >= 0
    np.testing.assert_allclose(out.fov, image.fov)
    np.testing.assert_allclose(out.center, image.center)
    assert out.metadata["axis"] == "z" and out.metadata["warnings"] == []
    # each 2D frame is scaled by its own maximum: half the input, half the output
    np.testing.assert_allclose(out.data[1], 0.5 * out.data[0], rtol=1e-4, atol=1e-6)


def test_a_volume_is_enhanced_slice_by_slice_along_the_chosen_axis(model):
    pixel = 20e-3 / 101
    stack = np.stack([blob(40)] * 3, axis=0)  # (z, y, x), every x-y slice the same
    volume = MPIImage(stack[None].astype(np.float32), np.array([3 * 1e-3, 40 * pixel,
                      40 * pixel]), np.zeros(3))  # fmt: skip
    with pytest.raises(ValueError, match="choose the axis"):
        nm.enhance(volume, "dcgan", model=str(model))
    out = nm.enhance(volume, "dcgan", model=str(model), axis="z")
    single = nm.enhance(image_2d(blob(40)), "dcgan", model=str(model))
    for z in range(3):
        np.testing.assert_allclose(out.data[0, z], single.data[0, 0], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="at least 16 x 16"):
        nm.enhance(volume, "dcgan", model=str(model), axis="y")  # slices 3 x 40


def test_bad_images_and_mismatched_models_are_refused_by_name(model, tmp_path):
    nan = blob(40)
    nan[3, 4] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        nm.enhance(image_2d(nan), "dcgan", model=str(model))
    with pytest.raises(ValueError, match=f"at least {MIN_SIDE} x {MIN_SIDE}"):
        nm.enhance(image_2d(blob(10)), "dcgan", model=str(model))
    coarse = image_2d(blob(40), pixel=0.5e-3)
    with pytest.raises(ValueError, match=r"pixel size: image 0\.5 x 0\.5 mm, model 0\.198 mm"):
        nm.enhance(coarse, "dcgan", model=str(model))
    allowed = nm.enhance(coarse, "dcgan", model=str(model), allow_mismatch=True)
    assert "pixel size" in allowed.metadata["warnings"][0]
    other_scan = image_2d(blob(40))
    other_scan.metadata["xspace_blur"] = {"relaxation_time": 3e-6}
    with pytest.raises(ValueError, match="relaxation_time"):
        nm.enhance(other_scan, "dcgan", model=str(model))
    with pytest.raises(ValueError, match="does not exist"):
        nm.enhance(image_2d(blob(40)), "dcgan", model=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="parameter 'axis' must be one of"):
        nm.enhance(image_2d(blob(40)), "dcgan", model=str(model), axis="w")


def test_the_enhance_command_deblurs_a_2d_reconstruction_file(model, tmp_path, capsys):
    from napari_mpi.io import read_mdf, write_reconstruction

    grid = image_grid(48)
    image = MPIImage(blob(48)[None, None].astype(np.float32), grid.fov, grid.center)
    write_reconstruction(tmp_path / "in.mdf", image)
    out = tmp_path / "out.mdf"
    argv = ["enhance", str(tmp_path / "in.mdf"), "--method", "dcgan", "--model", str(model),
            "-o", str(out), "--quiet", "--allow-mismatch"]  # fmt: skip
    assert main(argv) == 0
    assert "pixel size" in capsys.readouterr().err  # 48 pixels over 20 mm: a warning
    with read_mdf(out) as f:
        assert f.image().data.shape == (1, 1, 48, 48)
    volume = tmp_path / "vol.mdf"
    write_reconstruction(volume, MPIImage(np.ones((1, 4, 20, 20), np.float32),
                                          np.array([4e-3, 4e-3, 4e-3]), np.zeros(3)))  # fmt: skip
    assert main(["enhance", str(volume), "--method", "dcgan", "--model", str(model),
                 "-o", str(tmp_path / "v.mdf")]) != 0  # fmt: skip
    assert "choose the axis" in capsys.readouterr().err and not (tmp_path / "v.mdf").exists()
