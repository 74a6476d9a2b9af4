"""Image and volume collections stored as ``.npz``, and deterministic splits.

Learned methods of both tasks read their training images here: MNIST-style 2D digits
``(n, h, w)`` (e.g. ``../shared/data/mnist-test10k/mnist.npz``, key ``data``) and MedMNIST-style
3D volumes ``(n, d, h, w)`` (e.g. VesselMNIST3D, whose file stores its own ``train_images``,
``val_images`` and ``test_images``).

Splits never share a source image. A file that stores its splits is used as stored
(:func:`load_split`); a single array is split by index (:func:`split_indices`): images
``[0, test_start)`` are for training and validation (the last ``val_fraction`` of them for
validation) and ``[test_start, n)`` are the test set, e.g. MNIST test images 0-8999 and
9000-9999. Everything here is numpy only (no torch), so reading data is light.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

__all__ = ["SPLITS", "load_npz_images", "load_split", "split_indices"]

SPLITS = ("train", "val", "test")


def split_indices(
    num_images: int,
    split: str,
    test_start: int = 9000,
    val_fraction: float = 0.1,
) -> np.ndarray:
    """Source images of a split: [0, test_start) is train + val (val is its last part),
    [test_start, num_images) is test."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    test_start = min(test_start, num_images)
    n_val = round(test_start * val_fraction)
    if split == "train":
        return np.arange(0, test_start - n_val)
    if split == "val":
        return np.arange(test_start - n_val, test_start)
    return np.arange(test_start, num_images)


def load_npz_images(path: str | Path, key: str | None = None) -> np.ndarray:
    """Images stored in an ``.npz`` (MNIST-style (n, h, w) or MedMNIST-style (n, d, h, w)).

    ``key`` names the array; by default ``data``, ``test_images``, ``train_images`` or the file's
    only array. Raises ValueError naming the file for anything unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"phantom file {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if key is None:
                for candidate in ("data", "test_images", "train_images", "images"):
                    if candidate in keys:
                        key = candidate
                        break
                else:
                    if len(keys) != 1:
                        raise ValueError(
                            f"phantom file {path}: choose an array with key=..., found {keys}"
                        )
                    key = keys[0]
            if key not in keys:
                raise ValueError(f"phantom file {path}: no array '{key}', found {keys}")
            images = np.asarray(npz[key])
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        if str(exc).startswith(f"phantom file {path}"):
            raise
        raise ValueError(
            f"phantom file {path}: not a readable .npz of numeric arrays ({type(exc).__name__})"
        ) from None
    if images.ndim not in (3, 4) or images.dtype.kind not in "iufb":
        raise ValueError(
            f"phantom file {path}: array '{key}' must be numeric (n, h, w) or (n, d, h, w), "
            f"got {images.dtype} {images.shape}"
        )
    return images


def load_split(
    path: str | Path,
    split: str,
    key: str | None = None,
    ndim: int | None = None,
    test_start: int = 9000,
    val_fraction: float = 0.1,
) -> np.ndarray:
    """The images of one split of an ``.npz``.

    A file with ``train_images`` / ``val_images`` / ``test_images`` (MedMNIST) gives that
    split's array as stored (``key`` is then ignored); otherwise the array ``key`` (see
    :func:`load_npz_images`) is split by :func:`split_indices`. ``ndim`` (2 or 3) requires
    images (n, h, w) or volumes (n, d, h, w); ValueError names the file otherwise.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(path)
    stored = False
    if path.is_file() and zipfile.is_zipfile(path):
        with np.load(path, allow_pickle=False) as npz:
            stored = all(f"{s}_images" in npz.files for s in SPLITS)
    if stored:
        images = load_npz_images(path, f"{split}_images")
    else:
        images = load_npz_images(path, key)
        images = images[split_indices(images.shape[0], split, test_start, val_fraction)]
    if ndim is not None and images.ndim != ndim + 1:
        kind = "(n, h, w) images" if ndim == 2 else "(n, d, h, w) volumes"
        raise ValueError(f"phantom file {path}: needs {kind}, got {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"phantom file {path}: the '{split}' split has no images")
    return images
