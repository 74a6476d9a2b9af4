"""Training and evaluation pairs (degraded volume, phantom) for 3D enhancement.

Phantoms come from a MedMNIST-style ``.npz`` (VesselMNIST3D: ``train_images``, ``val_images``,
``test_images``, (n, 28, 28, 28) uint8) resized to the pair grid (32^3 as in the CSDNet and DCCDM
papers), or, when no file is given, from procedural vessel trees
(:func:`napari_mpi.simulation.phantoms.vessel_phantom`). Each phantom is degraded by a
:class:`~napari_mpi.enhance.Degradation` (the papers' layered scan, with noise).

Determinism: pair ``i`` of split ``s`` depends only on (``seed``, ``s``, ``i``): its noise (and a
procedural phantom's tree) come from ``numpy.random.SeedSequence([seed, split code, i])``.

The test split is kept out of training and model selection structurally: :func:`make_pairs`
marks every :class:`PairSet` with its split, and :func:`check_training_split` (which training
and tuning code calls on every set it is given) refuses a test set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets import SPLITS  # "train", "val", "test"
from ..grid import Grid
from ..image import MPIImage
from ..simulation.phantoms import vessel_phantom
from .degradation import Degradation

#: Splits that training and model selection may use.
TRAINING_SPLITS = ("train", "val")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
#: Pair volumes: voxels per axis and voxel edge (m), as in the papers (32^3).
PAIR_SIZE = 32
PAIR_VOXEL = 1e-3
#: Procedural phantoms per split when no file is given.
PROCEDURAL_COUNTS = {"train": 512, "val": 64, "test": 128}


def normalisation_card(source: str) -> dict:
    """How the pair intensities are scaled, for a model card (``source``: file or procedural).

    Phantoms are concentrations relative to their maximum (VesselMNIST3D: uint8 / 255 after
    resizing); degraded volumes are in the same concentration units (the scan PSF sums to 1).
    Networks see both divided by one factor per volume, the maximum of the *input* (known at
    inference), and their output is multiplied back, so every method returns an image in the
    input's units and metrics compare it with the phantom directly.
    """
    return {
        "phantom": (
            "uint8 / 255, resized linearly (edge mode) to the pair grid"
            if source != "procedural"
            else "procedural vessel tree, partial-volume rasterised, 0..1"
        ),
        "degraded": "layered scan of the phantom: same concentration units, PSF sum 1",
        "network_scale": "input and target / max(input) per volume; output multiplied back",
        "scale_epsilon": SCALE_EPS,
    }


SCALE_EPS = 1e-12


def input_scale(volume: np.ndarray) -> float:
    """The per-volume factor networks divide by: max(volume), at least ``SCALE_EPS``."""
    return max(float(np.max(volume)), SCALE_EPS)


@dataclass
class PairSet:
    """Pairs of degraded volumes and their phantoms on one grid.

    Attributes
    ----------
    inputs, targets : ndarray, shape (n, z, y, x), float32
        Degraded volumes and phantoms (concentration units, see :func:`normalisation_card`).
    grid : Grid
        Geometry of every volume (m).
    split : {"train", "val", "test"}
    indices : ndarray of int, shape (n,)
        Index of each pair within its split (the file's volume index for a file).
    degradation : Degradation
    seed : int
    source : str
        The ``.npz`` path or ``"procedural"``.
    normalisation : dict
        :func:`normalisation_card`.
    """

    inputs: np.ndarray
    targets: np.ndarray
    grid: Grid
    split: str
    indices: np.ndarray
    degradation: Degradation
    seed: int
    source: str
    normalisation: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def image(self, i: int, which: str = "input") -> MPIImage:
        """Pair ``i``'s degraded volume (``"input"``) or phantom (``"target"``) as an MPIImage."""
        data = {"input": self.inputs, "target": self.targets}[which][i]
        meta = {"split": self.split, "index": int(self.indices[i]), "source": self.source}
        if which == "input":
            meta["degradation"] = self.degradation.to_dict()
        return MPIImage(data, self.grid.fov, self.grid.center, metadata=meta)

    def card(self) -> dict:
        """The data part of a model card: source, split, count, seed, grid, degradation."""
        return {
            "source": self.source,
            "split": self.split,
            "count": len(self),
            "seed": self.seed,
            "grid_shape_zyx": list(self.grid.shape),
            "voxel_size_m_zyx": [float(v) for v in self.grid.voxel_size],
            "degradation": self.degradation.to_dict(),
            "normalisation": dict(self.normalisation),
        }


def check_training_split(pairs: PairSet | str, purpose: str = "training") -> None:
    """Refuse the test split for training or model selection (ValueError naming ``purpose``)."""
    split = pairs if isinstance(pairs, str) else pairs.split
    if split not in TRAINING_SPLITS:
        raise ValueError(
            f"{purpose} may use only the {list(TRAINING_SPLITS)} splits, got '{split}': the "
            "test split is for the final evaluation only"
        )


def pair_grid(size: int = PAIR_SIZE, voxel_size: float = PAIR_VOXEL) -> Grid:
    """The cubic pair grid: ``size``^3 voxels of ``voxel_size`` (m), centred at 0."""
    if int(size) < 4 or not np.isfinite(voxel_size) or voxel_size <= 0:
        raise ValueError(
            f"pair grid needs size >= 4 and a positive voxel size, got {size}, {voxel_size}"
        )
    return Grid((int(size),) * 3, (int(size) * voxel_size,) * 3, (0.0, 0.0, 0.0))


def load_split(path: str | Path, split: str) -> np.ndarray:
    """The (n, d, h, w) volumes of one split of an ``.npz`` (via ``datasets.load_split``).

    A MedMNIST-style file gives its stored ``{split}_images`` (only that array is read, so
    training never loads the test volumes); a single array is split by index as
    :mod:`napari_mpi.datasets` does. ValueError names the file for anything else.
    """
    from ..datasets import load_split as load_dataset_split

    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return load_dataset_split(path, split, ndim=3)


def _phantom_values(volume: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A stored volume scaled to 0..1 (uint8 / 255, else / max) and resized to ``shape``."""
    from skimage.transform import resize

    v = volume.astype(np.float64)
    v = v / 255.0 if volume.dtype == np.uint8 else v / max(float(v.max()), SCALE_EPS)
    if v.shape != shape:
        v = resize(v, shape, order=1, mode="edge", anti_aliasing=False)
    return np.clip(v, 0.0, 1.0)


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index)])
    )


def iter_pairs(
    source: str | Path | None = None,
    split: str = "train",
    degradation: Degradation | None = None,
    seed: int = 0,
    count: int | None = None,
    start: int = 0,
    size: int = PAIR_SIZE,
    voxel_size: float = PAIR_VOXEL,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(index, degraded, phantom)`` for pairs ``start .. start+count-1`` of a split.

    Parameters
    ----------
    source : path or None
        A MedMNIST-style ``.npz`` (its stored split) or None for procedural vessel trees.
    split : {"train", "val", "test"}
    degradation : Degradation, optional
        Default: ``Degradation()`` (the papers' scan, 30 dB).
    seed : int
        Base seed; pair ``i`` is the same whatever ``start`` and ``count``.
    count : int, optional
        Number of pairs (default: to the end of the file's split, or
        ``PROCEDURAL_COUNTS[split]``).
    size, voxel_size : int, float
        Pair grid: ``size``^3 voxels of ``voxel_size`` (m). Default 32^3 at 1 mm.

    Yields
    ------
    index : int
    degraded, phantom : ndarray, shape (size, size, size), float32
    """
    degradation = degradation or Degradation()
    grid = pair_grid(size, voxel_size)
    volumes = None if source is None else load_split(source, split)
    if source is None and split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    total = PROCEDURAL_COUNTS[split] if volumes is None else volumes.shape[0]
    stop = total if count is None else start + int(count)
    if start < 0 or (volumes is not None and stop > total) or stop < start:
        raise ValueError(f"pairs {start}..{stop - 1} out of range: split '{split}' has {total}")
    for i in range(start, stop):
        rng = _rng(seed, split, i)
        if volumes is None:
            tree_seed = int(rng.integers(2**31))
            phantom = vessel_phantom(grid, seed=tree_seed).data[0]
        else:
            phantom = _phantom_values(volumes[i], grid.shape).astype(np.float32)
        degraded = degradation.apply(MPIImage(phantom, grid.fov, grid.center), seed=rng)
        yield i, degraded.data[0], phantom.astype(np.float32)


def make_pairs(
    source: str | Path | None = None,
    split: str = "train",
    degradation: Degradation | None = None,
    seed: int = 0,
    count: int | None = None,
    start: int = 0,
    size: int = PAIR_SIZE,
    voxel_size: float = PAIR_VOXEL,
) -> PairSet:
    """All pairs of :func:`iter_pairs` in one :class:`PairSet` (same parameters)."""
    degradation = degradation or Degradation()
    items = list(iter_pairs(source, split, degradation, seed, count, start, size, voxel_size))
    if not items:
        raise ValueError(f"no pairs: count must be >= 1, got {count}")
    return pair_set(items, source, split, degradation, seed, size, voxel_size)


def pair_set(
    items: list[tuple[int, np.ndarray, np.ndarray]],
    source: str | Path | None,
    split: str,
    degradation: Degradation,
    seed: int,
    size: int = PAIR_SIZE,
    voxel_size: float = PAIR_VOXEL,
) -> PairSet:
    """The :class:`PairSet` of ``(index, degraded, phantom)`` items from :func:`iter_pairs`."""
    label = "procedural" if source is None else str(source)
    return PairSet(
        inputs=np.stack([d for _, d, _ in items]),
        targets=np.stack([p for _, _, p in items]),
        grid=pair_grid(size, voxel_size),
        split=split,
        indices=np.array([i for i, _, _ in items]),
        degradation=degradation,
        seed=int(seed),
        source=label,
        normalisation=normalisation_card(label),
    )
