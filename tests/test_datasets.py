"""datasets: .npz images and volumes, deterministic splits that never overlap."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.datasets import load_npz_images, load_split, split_indices


def test_split_indices_and_old_import_paths():
    from napari_mpi.recon.training_data import split_indices as old_split
    from napari_mpi.simulation.phantoms import load_npz_images as old_loader

    assert old_split is split_indices and old_loader is load_npz_images
    parts = [split_indices(100, s, test_start=80) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [72, 8, 20]
    assert len(np.unique(np.concatenate(parts))) == 100


def test_stored_and_index_splits(tmp_path):
    vols = tmp_path / "vols.npz"
    data = {f"{s}_images": np.full((n, 4, 4, 4), i, np.uint8)
            for i, (s, n) in enumerate([("train", 5), ("val", 2), ("test", 3)])}  # fmt: skip
    np.savez(vols, **data)
    assert load_split(vols, "val", ndim=3).shape == (2, 4, 4, 4)
    assert (load_split(vols, "test") == 2).all()
    with pytest.raises(ValueError, match=r"needs \(n, h, w\) images"):
        load_split(vols, "train", ndim=2)
    images = tmp_path / "img.npz"
    np.savez(images, data=np.arange(20 * 9).reshape(20, 3, 3))
    train = load_split(images, "train", test_start=10, val_fraction=0.2)
    assert train.shape == (8, 3, 3) and train[0, 0, 0] == 0
    assert load_split(images, "test", test_start=10).shape == (10, 3, 3)
    with pytest.raises(ValueError, match="split must be one of"):
        load_split(images, "dev")
    with pytest.raises(ValueError, match="no such file"):
        load_split(tmp_path / "missing.npz", "train")


def test_vesselmnist3d_splits(shared_data):
    path = shared_data / "vesselmnist3d" / "vesselmnist3d.npz"
    sizes = [load_split(path, s, ndim=3).shape[0] for s in ("train", "val", "test")]
    assert sizes == [1335, 191, 382]
