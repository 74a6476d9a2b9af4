"""The shipped enhancement models: small float16 files whose cards record the command, data and
scan they were trained with, each sharper than its input on VesselMNIST3D validation volumes
(the test split stays for the benchmark), and usable from a fresh install without training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.enhance import Degradation
from napari_mpi.enhance.data import make_pairs
from napari_mpi.enhance.learned import DEFAULT_MODELS, LEARNED_METHODS, MODELS_DIR
from napari_mpi.metrics import psnr

#: the least mean PSNR gain (dB) over the degraded input on the 6 validation volumes below
#: (measured when the models were shipped: unet3d 6.50, edsr3d 4.64, rcan3d 6.23, rrdb3d 6.01,
#: csdnet 4.23, esrgan3d 3.93; the bounds leave room for other BLAS builds, not for a broken
#: model)
MIN_GAIN_DB = {"unet3d": 4.5, "edsr3d": 3.0, "rcan3d": 4.0, "rrdb3d": 4.0, "csdnet": 2.5,
               "esrgan3d": 2.5}  # fmt: skip


VESSELS = Path(__file__).resolve().parents[3] / "shared" / "data" / "vesselmnist3d"


@pytest.fixture(scope="module")
def val_pairs():
    path = VESSELS / "vesselmnist3d.npz"
    if not path.is_file():
        pytest.fail(f"{path} is missing: clone the project with ../shared beside it")
    return make_pairs(path, "val", Degradation(), seed=0, count=6)


@pytest.mark.parametrize("method", LEARNED_METHODS)
def test_shipped_model_is_small_half_precision_and_documented(method):
    folder = MODELS_DIR / DEFAULT_MODELS[method]
    assert (folder / "model.pt").stat().st_size <= 5e6
    card = json.loads((folder / "card.json").read_text())
    assert card["method"] == method and card["task"] == "enhance"
    assert card["weights_dtype"] == "float16"
    assert card["command"].startswith(f"napari-mpi train {method} --volumes ")
    train = card["data"]["train"]
    assert train["split"] == "train" and card["data"]["val"]["split"] == "val"
    assert train["source"].endswith("vesselmnist3d.npz") and train["count"] == 1335
    assert Degradation.from_dict(train["degradation"]) == Degradation()
    assert train["voxel_size_m_zyx"] == [1e-3, 1e-3, 1e-3]
    if method == "csdnet":  # the temperature chosen on validation, now the default
        assert card["training"]["temperature"] == 1.0 and card["training"]["alpha"] == 0.1
        assert card["teacher_architecture"]["class"] == "Teacher2D"
    training = (folder / "TRAINING.md").read_text()
    assert card["command"].split(" -o ")[0] in training


@pytest.mark.parametrize("method", LEARNED_METHODS)
def test_shipped_model_sharpens_validation_volumes(method, val_pairs):
    before, after = [], []
    for i in range(len(val_pairs)):
        scan, truth = val_pairs.image(i, "input"), val_pairs.targets[i]
        out = nm.enhance(scan, method)  # the shipped model, the scan's card checked
        assert out.grid.same_as(scan.grid) and out.metadata["warnings"] == []
        before.append(psnr(scan.data[0], truth))
        after.append(psnr(out.data[0], truth))
    gain = float(np.mean(after) - np.mean(before))
    assert gain >= MIN_GAIN_DB[method], f"{method}: {gain:.2f} dB over the input"
