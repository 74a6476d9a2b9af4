"""Training data for learned reconstructions, from any system matrix.

Pairs (measurement, phantom) are made as in the DERnet paper: a digit (central 15 x 15 crop,
random rotation, scale and position) resized to the system matrix's grid, its signal
u = S c plus complex Gaussian noise at an SNR drawn uniformly from ``snr_range``.

With ``mix`` (kind -> weight, see :mod:`napari_mpi.simulation.phantom_mix`) each phantom is
drawn from a mix of kinds instead: digits (from the source, placed as above), strokes, points,
tubes, cones, vessel slices and concentration steps.

Splits never share a source image: every source index belongs to exactly one split. For the
MNIST test set shipped with the project's shared data, images 0-8999 are for training and
validation (the last ``val_fraction`` of them for validation) and 9000-9999 are the test set.
Everything is deterministic given the seed.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import SPLITS, load_npz_images, split_indices
from ..progress import Progress, run
from ..simulation.noise import complex_noise, noise_std_for_snr, rms
from ..simulation.phantom_mix import PhantomMix
from ..simulation.phantoms import place_digit, stroke_phantom
from ..system_matrix import SystemMatrix
from .training_config import check_snr_range


@dataclass(eq=False)
class TrainingSet:
    """Paired samples for one split.

    Attributes
    ----------
    measurements : ndarray, shape (n, rows), complex64
        Noisy spectra aligned with the system matrix rows.
    phantoms : ndarray, shape (n, z, y, x), float32
        Ground truth on the system matrix's grid (max 1 per sample).
    snr_db : ndarray, shape (n,)
        SNR of each sample (dB).
    source_index : ndarray, shape (n,)
        Index of the source image (-1 for procedural phantoms, which use ``seed`` streams).
    split : str
        "train", "val" or "test".
    clean : ndarray, shape (n, rows), complex64, optional
        Noise-free spectra S c (lets training draw fresh noise every epoch).
    kinds : ndarray of str, shape (n,), optional
        The phantom kind of each sample ("digit", "strokes", ...; see
        :mod:`napari_mpi.simulation.phantom_mix`).
    """

    measurements: np.ndarray
    phantoms: np.ndarray
    snr_db: np.ndarray
    source_index: np.ndarray
    split: str
    clean: np.ndarray | None = None
    kinds: np.ndarray | None = None

    def redraw_noise(
        self, rng: np.random.Generator, snr_range: tuple[float, float] = (20.0, 40.0)
    ) -> np.ndarray:
        """New noisy spectra: the clean ones plus fresh noise at SNRs drawn from ``snr_range``
        (dB), as when the set was made; (n, rows) complex64. The set is not modified."""
        if self.clean is None:
            raise ValueError("this training set was made without its clean spectra")
        snr = rng.uniform(*snr_range, size=len(self.clean))
        # as noise_std_for_snr, per sample; divided by sqrt(2) per real component
        std = rms(self.clean, axis=1) / 10 ** (snr / 20) / np.sqrt(2)
        shape = self.clean.shape
        noise = rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(
            shape, dtype=np.float32
        )
        noise *= std.astype(np.float32)[:, None]
        return (self.clean + noise).astype(np.complex64)


def iter_training_set(
    system_matrix: SystemMatrix,
    source: str | Path | None,
    num_samples: int,
    split: str = "train",
    snr_range: tuple[float, float] = (20.0, 40.0),
    seed: int = 0,
    key: str | None = None,
    test_start: int = 9000,
    val_fraction: float = 0.1,
    draw: int = 0,
    mix: Mapping[str, float] | None = None,
) -> Generator[Progress, None, TrainingSet]:
    """Generate ``num_samples`` pairs of one split (see the module docstring).

    ``source`` is an MNIST-style ``.npz`` (n, h, w), or None for procedural digit-like strokes
    (then the split only changes the random streams, which never overlap). ``draw`` > 0 gives
    another, independent draw of the same split (new placements, noise and SNRs of the same
    source images), e.g. new training pairs for every epoch. ``mix`` (kind -> weight) draws the
    phantoms from a mix of kinds (:class:`~napari_mpi.simulation.phantom_mix.PhantomMix`;
    without a source, ``digit`` is left out); None keeps digits only (strokes without a
    source).
    """
    sm = system_matrix
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    lo, hi = check_snr_range(snr_range)
    split_seed = {"train": 0, "val": 1, "test": 2}[split] if split in SPLITS else None
    if split_seed is None:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if draw < 0:
        raise ValueError(f"draw must be >= 0, got {draw}")
    rng = np.random.default_rng([seed, split_seed] + ([draw] if draw else []))
    images = None
    if source is not None:
        images = load_npz_images(source, key)
        if images.ndim != 3:
            raise ValueError(
                f"training source {source}: needs (n, h, w) images, got {images.shape}"
            )
        pool = split_indices(images.shape[0], split, test_start, val_fraction)
        if pool.size == 0:
            raise ValueError(f"training source {source}: the '{split}' split has no images")
        pool = rng.permutation(pool)  # every source image once before any repeats
    sampler = None if mix is None else PhantomMix(mix, has_digits=images is not None)
    used = [0]

    def next_digit() -> np.ndarray:
        idx = int(pool[used[0] % pool.size])
        used[0] += 1
        indices[i] = idx
        return images[idx]

    kinds = np.empty(num_samples, dtype=object)
    phantoms = np.empty((num_samples, *sm.grid_shape), dtype=np.float32)
    indices = np.full(num_samples, -1, dtype=np.int64)
    snr = rng.uniform(lo, hi, size=num_samples)
    u = np.empty((num_samples, sm.num_rows), dtype=np.complex64)
    clean_all = np.empty_like(u)
    matrix = sm.matrix
    step = max(1, num_samples // 100)
    yield Progress(0, num_samples, f"{split} samples")
    for i in range(num_samples):
        if sampler is not None:
            values, kinds[i] = sampler.draw(sm.grid, rng, next_digit)
        elif images is not None:
            kinds[i] = "digit"
            idx = int(pool[i % pool.size])
            values = place_digit(images[idx], sm.grid, rng)
            indices[i] = idx
        else:
            kinds[i] = "strokes"
            values = stroke_phantom(sm.grid, seed=int(rng.integers(2**62))).data[0]
        phantoms[i] = values
        clean = matrix @ values.reshape(-1).astype(np.complex64)
        clean_all[i] = clean
        std = noise_std_for_snr(clean, snr[i]) if np.any(clean) else 0.0
        u[i] = clean + complex_noise(clean.shape, std, rng)
        if (i + 1) % step == 0 or i + 1 == num_samples:
            yield Progress(i + 1, num_samples, f"{split} samples")
    return TrainingSet(u, phantoms, snr, indices, split, clean_all, kinds.astype(str))


def make_training_set(
    system_matrix: SystemMatrix, source, num_samples: int, **kwargs
) -> TrainingSet:
    """Generate a split (see :func:`iter_training_set`)."""
    return run(iter_training_set(system_matrix, source, num_samples, **kwargs))
