"""The learned enhancement methods end to end: trained from the CLI on a volume file (test split
never read), applied through the registry in tiles on any volume size, and every bad input or
mismatched model refused with a message naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import napari_mpi as nm
from napari_mpi.cli import main
from napari_mpi.enhance import Degradation
from napari_mpi.enhance.learned import LEARNED_METHODS, MIN_SIDE, load_enhancer
from napari_mpi.enhance.recipe_configs import UNet3DConfig
from napari_mpi.enhance.training import iter_train_enhancer
from napari_mpi.grid import Grid
from napari_mpi.image import MPIImage
from napari_mpi.recon.registry import get_method, methods
from napari_mpi.simulation.phantoms import vessel_phantom

SCAN = "z_step=3e-3,snr_db=30"


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """A MedMNIST-style file: 6 train and 3 val volumes of smooth blobs (uint8, 28^3); its
    test split is NaN, so a training that read it would fail."""
    rng = np.random.default_rng(0)
    blobs = gaussian_filter((rng.random((9, 28, 28, 28)) > 0.985) * 1.0, (0, 1, 1, 1))
    vols = (255 * blobs / blobs.max(axis=(1, 2, 3), keepdims=True)).astype(np.uint8)
    path = tmp_path_factory.mktemp("vols") / "vessels.npz"
    np.savez(
        path,
        train_images=np.stack(vols[:6]),
        val_images=np.stack(vols[6:]),
        test_images=np.full((2, 28, 28, 28), np.nan, dtype=np.float32),
    )
    return path


@pytest.fixture(scope="module")
def model(volumes, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "unet"
    argv = ["train", "unet3d", "--volumes", str(volumes), "--train-volumes", "6",
            "--val-volumes", "3", "--epochs", "2", "--steps-per-epoch", "3", "--batch", "2",
            "--widths", "4", "8", "--degradation", SCAN, "-o", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return out


def scan_of(size: int, seed: int = 5, degradation: Degradation | None = None) -> MPIImage:
    grid = Grid((size,) * 3, (size * 1e-3,) * 3, (0.0, 0.0, 0.0))
    return (degradation or Degradation.parse(SCAN)).apply(vessel_phantom(grid, seed=seed), 1)


def test_the_five_methods_are_registered_enhancement_methods_with_their_trainables():
    names = [m.name for m in methods("enhance")]
    assert set(LEARNED_METHODS) <= set(names)
    assert not set(LEARNED_METHODS) & {m.name for m in methods("reconstruct")}
    from napari_mpi.nn.trainers import trainables

    assert set(LEARNED_METHODS) <= {t.name for t in trainables("enhance")}
    for name in LEARNED_METHODS:
        m = get_method(name, task="enhance")
        assert m.kind == "learned"
        assert [p.name for p in m.params] == ["model", "device", "overlap", "allow_mismatch"]


def test_cli_training_records_the_scan_and_the_splits(model):
    card = json.loads((model / "card.json").read_text())
    assert card["method"] == "unet3d" and card["task"] == "enhance"
    assert card["data"]["train"]["degradation"]["z_step"] == pytest.approx(3e-3)
    assert card["data"]["train"]["split"] == "train" and card["data"]["val"]["split"] == "val"
    assert card["data"]["train_volumes"] == 6 and card["data"]["val_volumes"] == 3
    assert card["command"].startswith("napari-mpi train unet3d --volumes")
    assert card["training"]["steps"] in (3, 6) and np.isfinite(card["metrics"]["val_psnr"])
    assert (model / "last.pt").is_file()  # the whole state after the last epoch (resume)


def test_enhance_keeps_the_grid_and_tiles_a_volume_larger_than_the_training_size(model):
    image = scan_of(44)  # 2 x 2 x 2 tiles of 32^3
    work = nm.iter_enhance(image, "unet3d", model=str(model))
    steps = []
    while True:
        try:
            steps.append(next(work))
        except StopIteration as stop:
            out = stop.value
            break
    assert [s.done for s in steps] == list(range(1, 9)) and steps[-1].total == 8
    assert out.grid.same_as(image.grid) and out.data.shape == image.data.shape
    assert np.isfinite(out.data).all() and out.data.min() >= 0 and out.data.max() > 0
    assert out.metadata["model"] == str(model) and out.metadata["warnings"] == []
    assert out.metadata["method"] == "unet3d"
    assert out.metadata["model_card"]["data"]["degradation"]["z_step"] == pytest.approx(3e-3)
    # targets were trained / the card's target_gain (about the phantom-to-scan peak ratio):
    # the output is multiplied back, so it is on the phantom's scale, not the blurred scan's
    gain = out.metadata["model_card"]["target_gain"]
    assert gain > 5 and out.data.max() > 0.2 * gain * image.data.max()


def test_a_model_for_another_scan_or_voxel_size_is_refused_unless_allowed(model):
    papers = scan_of(16, degradation=Degradation())  # z_step 2 mm, the model saw 3 mm
    with pytest.raises(ValueError, match=r"z_step: 0.002 != 0.003.*allow_mismatch"):
        nm.enhance(papers, "unet3d", model=str(model))
    out = nm.enhance(papers, "unet3d", model=str(model), allow_mismatch=True)
    assert any("z_step" in w for w in out.metadata["warnings"])
    coarse = MPIImage(scan_of(16).data, (32e-3, 16e-3, 16e-3), (0, 0, 0))
    with pytest.raises(ValueError, match=r"voxel size \(z, y, x\): image 2 x 1 x 1 mm"):
        nm.enhance(coarse, "unet3d", model=str(model))


def test_a_model_folder_of_another_method_or_task_is_refused(model, tmp_path):
    image = scan_of(16)
    with pytest.raises(ValueError, match="card says method 'unet3d', not 'csdnet'"):
        nm.enhance(image, "csdnet", model=str(model))
    with pytest.raises(ValueError, match="does not exist"):
        nm.enhance(image, "unet3d", model=str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"missing card\.json"):
        nm.enhance(image, "unet3d", model=str(tmp_path / "empty"))


def test_bad_volumes_are_refused_with_what_was_expected(model):
    with pytest.raises(ValueError, match="3D volume"):
        nm.enhance(MPIImage(np.ones((1, 1, 16, 16), np.float32), (1e-3, 16e-3, 16e-3),
                            (0, 0, 0)), "unet3d", model=str(model))  # fmt: skip
    bad = scan_of(16)
    bad.data[0, 3, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        nm.enhance(bad, "unet3d", model=str(model))
    small = MPIImage(np.ones((1, 6, 16, 16), np.float32), (6e-3, 16e-3, 16e-3), (0, 0, 0))
    with pytest.raises(ValueError, match=f"receptive field.*at least {MIN_SIDE}.*z 6"):
        nm.enhance(small, "unet3d", model=str(model))
    with pytest.raises(ValueError, match="overlap"):
        nm.enhance(scan_of(16), "unet3d", model=str(model), overlap=2)


def test_a_cancelled_training_leaves_the_last_validated_model_loadable(volumes, tmp_path):
    config = UNet3DConfig(widths=(4,), epochs=3, steps_per_epoch=2, batch=2, train_volumes=4,
                          val_volumes=2, degradation=SCAN)  # fmt: skip
    work = iter_train_enhancer("unet3d", config, tmp_path / "m", volumes)
    for step in work:
        if step.info.get("phase") == "training" and step.info.get("epoch") == 2:
            work.close()  # Cancel in the middle of epoch 2
            break
    _net, card, _ = load_enhancer("unet3d", tmp_path / "m", "cpu")
    assert card["training"]["epochs_done"] == 1 and (tmp_path / "m" / "last.pt").is_file()
    assert nm.enhance(scan_of(16), "unet3d", model=str(tmp_path / "m")).data.shape[1:] == (
        16,
        16,
        16,
    )


def test_training_refuses_a_missing_or_wrong_volume_file(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "edsr3d", "--volumes", str(tmp_path / "no.npz"), "-o", str(out)]) != 0
    assert "no.npz: no such file" in capsys.readouterr().err
    assert main(["train", "edsr3d", "--degradation", "z_step=-1", "-o", str(out)]) != 0
    assert "z_step" in capsys.readouterr().err and not out.exists()


def test_a_128_cube_is_enhanced_in_tiles_with_bounded_memory(model):
    import tracemalloc

    rng = np.random.default_rng(1)
    image = MPIImage(rng.random((1, 128, 128, 128), dtype=np.float32), (0.128,) * 3, (0, 0, 0))
    tracemalloc.start()
    out = nm.enhance(image, "unet3d", model=str(model), overlap=8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.data.shape == image.data.shape and np.isfinite(out.data).all()
    # tracemalloc sees numpy's arrays: the blended sum and weights (float64) and the float32
    # result, ~42 MB; torch's per-tile work is measured by benchmarks/bench_enhance_memory.py
    assert peak < 80e6, f"{peak / 1e6:.0f} MB"
