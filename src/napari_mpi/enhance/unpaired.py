"""Unpaired 2D x-space images for DC_GAN: domain X (native images) and domain Y (deconvolved
images of *other* phantoms), and paired sets for validation and tests.

Phantoms are 101 x 101 pixel images on a 20 x 20 mm FOV (the DC_GAN paper's simulation):
MNIST digits from an MNIST-style ``.npz`` (e.g. ``../shared/data/mnist-test10k/mnist.npz``)
resized to 101 x 101 (linear, anti-aliased; the digit fills the FOV as in the paper), or, when
no file is given, procedural shapes of the phantom mix (strokes, points, tubes, vessel trees;
:mod:`napari_mpi.simulation.phantom_mix`).

Domains (:func:`make_domains`), for ``count`` training phantoms:

- X: native images (:meth:`~napari_mpi.simulation.psf_mismatch.XSpaceBlur.native`, the true
  PSF) of phantoms ``0 .. count/2 - 1`` of the training split, each at an SNR drawn uniformly
  from ``snr_range`` dB;
- Y: Richardson-Lucy deconvolutions (accelerated, ``y_iterations``) with the *true* PSF of
  native images (at ``y_snr_db``) of phantoms ``count/2 .. count - 1``: what a well-deblurred
  image of this scanner looks like, made by the simulator that knows its PSF (as the paper's
  MATLAB simulation does). No image in X has its partner in Y.

By default ``count`` = 1600: the first 1,600 images of MNIST's training part (0-8099), 800 per
domain, each filling the FOV; with a ``scale_range`` below 1 each training phantom is shrunk
and placed at random (thinner strokes, smaller gaps), with a ``shift`` moved partly out of the
FOV (structures cut by its edge); validation and test phantoms are never shrunk or moved.
Validation (:func:`make_paired`, split "val", images 8100+) and tests (split "test",
9000+) are (native, phantom) pairs. Every image is divided by its own maximum (the network
sees [0, 1] images; a deconvolution's gain over its input, ``y_gain``, is recorded).

Determinism: phantom ``i`` of split ``s`` and its noise depend only on (``seed``, ``s``, ``i``)
(``numpy.random.SeedSequence``). Numpy only.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid
from ..progress import Progress
from ..simulation.psf_mismatch import XSpaceBlur

__all__ = [
    "FOV",
    "SIZE",
    "UnpairedDomains",
    "image_grid",
    "iter_make_domains",
    "load_phantoms",
    "make_paired",
    "phantom",
]

#: pixels per side and field of view (m) of the paper's simulated images
SIZE = 101
FOV = 20e-3
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
#: procedural phantoms per split when no digit file is given
PROCEDURAL_COUNTS = {"train": 4000, "val": 200, "test": 400}
#: kinds of the phantom mix used for procedural phantoms (no digit file)
PROCEDURAL_KINDS = ("strokes", "points", "tubes", "vessels")
#: axes a training phantom may be moved along (:func:`phantom`)
SHIFT_AXES = ("yx", "y", "x")
#: default RL iterations of domain Y (true PSF, accelerated)
Y_ITERATIONS = 400


def image_grid(size: int = SIZE, fov: float = FOV) -> Grid:
    """A 2D grid (1, size, size) over ``fov`` x ``fov`` (m), centred on 0."""
    return Grid(shape=(1, size, size), fov=np.array([0.0, fov, fov]), center=np.zeros(3))


def _rng(seed: int, split: str, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], index,
                                                         stream]))  # fmt: skip


def load_phantoms(source: str | Path | None, split: str) -> np.ndarray | None:
    """The digit images (n, h, w) of one split of ``source`` (None: procedural, returns None).
    MNIST-style files without stored splits: train 0-8099, val 8100-8999, test 9000+."""
    if source is None:
        return None
    from ..datasets import load_split

    return load_split(source, split, ndim=2)


def phantom(
    digits: np.ndarray | None,
    split: str,
    index: int,
    seed: int = 0,
    size: int = SIZE,
    scale_range: tuple[float, float] = (1.0, 1.0),
    shift: float = 0.0,
    shift_axes: str = "yx",
) -> np.ndarray:
    """Phantom ``index`` of ``split``: digit ``index`` resized to size x size (max 1), or a
    procedural shape drawn with (seed, split, index). float32 (size, size).

    ``scale_range`` (low, high), 0 < low <= high <= 1: the phantom is shrunk by a factor drawn
    uniformly from it (side ``round(s * size)`` pixels, strokes and gaps thinner by ``s``) and
    placed at a random position on the size x size FOV (both from (seed, split, index)); (1, 1),
    the default, is the paper's digit filling the FOV.

    ``shift`` in [0, 1): the phantom is then moved by a whole number of pixels drawn uniformly
    from +-``shift * size`` along each axis of ``shift_axes`` ("yx", "y" or "x"; from (seed,
    split, index)), what leaves the FOV cut off: structures that reach the FOV's edge, as a
    tube running through it does (a digit that fills the FOV never does)."""
    lo, hi = (float(v) for v in scale_range)
    if not (0 < lo <= hi <= 1):
        raise ValueError(f"phantom: scale_range must be (low, high) with 0 < low <= high <= 1, "
                         f"got {scale_range!r}")  # fmt: skip
    if not 0 <= float(shift) < 1:
        raise ValueError(f"phantom: shift must be in [0, 1) (a fraction of the FOV), got {shift!r}")
    if shift_axes not in SHIFT_AXES:
        raise ValueError(f"phantom: shift_axes must be one of {SHIFT_AXES}, got {shift_axes!r}")
    side = size
    if lo < 1:
        place = _rng(seed, split, index, stream=2)
        side = max(8, min(size, round(float(place.uniform(lo, hi)) * size)))
    if digits is not None:
        from skimage.transform import resize

        img = np.asarray(digits[index], dtype=np.float64)
        out = resize(img, (side, side), order=1, anti_aliasing=True, mode="constant")
    else:
        from ..simulation.phantom_mix import mix_phantom

        rng = _rng(seed, split, index, stream=1)
        kind = PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS)))]
        out = mix_phantom(kind, image_grid(size), rng)[0]
        if side < size:
            from skimage.transform import resize

            out = resize(out, (side, side), order=1, anti_aliasing=True, mode="constant")
    if side < size:
        top, left = (int(place.integers(size - side + 1)) for _ in range(2))
        canvas = np.zeros((size, size), dtype=np.float64)
        canvas[top : top + side, left : left + side] = out
        out = canvas
    if shift > 0:
        reach = round(float(shift) * size)
        dy, dx = (int(v) for v in _rng(seed, split, index, stream=3).integers(-reach, reach + 1, 2))
        dy, dx = (dy if "y" in shift_axes else 0), (dx if "x" in shift_axes else 0)
        moved = np.zeros_like(out)
        moved[max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)] = out[
            max(-dy, 0) : size + min(-dy, 0), max(-dx, 0) : size + min(-dx, 0)
        ]
        out = moved if moved.max() > 0 else out  # never an empty phantom
    out = np.clip(out, 0, None)
    peak = float(out.max())
    return (out / peak if peak > 0 else out).astype(np.float32)


def _available(digits: np.ndarray | None, split: str) -> int:
    return PROCEDURAL_COUNTS[split] if digits is None else len(digits)


@dataclass
class UnpairedDomains:
    """Domain X (native) and Y (deconvolved), unpaired, each image scaled to maximum 1.

    Attributes
    ----------
    x, y : ndarray, shape (n, size, size), float32
    x_index, y_index : ndarray of int
        The training phantoms each image came from (disjoint).
    y_gain : float
        Median over Y of max(deconvolved) / max(its native image): how much brighter a
        deblurred image is than its input (inference multiplies by it).
    card : dict
        How the domains were made (for a model card).
    """

    x: np.ndarray
    y: np.ndarray
    x_index: np.ndarray
    y_index: np.ndarray
    y_gain: float
    card: dict


def _snr(rng: np.random.Generator, snr_range: tuple[float, float] | None) -> float | None:
    if snr_range is None:
        return None
    lo, hi = snr_range
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def iter_make_domains(
    source: str | Path | None,
    blur: XSpaceBlur,
    count: int = 1600,
    seed: int = 0,
    snr_range: tuple[float, float] | None = (30.0, 45.0),
    y_snr_db: float | None = 40.0,
    y_iterations: int = Y_ITERATIONS,
    size: int = SIZE,
    scale_range: tuple[float, float] = (1.0, 1.0),
    shift: float = 0.0,
    shift_axes: str = "yx",
) -> Generator[Progress, None, UnpairedDomains]:
    """Make the two domains (module docstring), yielding progress every 50 images; each
    training phantom shrunk by a factor drawn from ``scale_range`` and moved by up to
    ``shift`` of the FOV along ``shift_axes`` (:func:`phantom`)."""
    from .deconvolution import richardson_lucy_array

    if int(count) < 2:
        raise ValueError(f"unpaired domains: count must be >= 2 (half X, half Y), got {count}")
    if int(y_iterations) < 1:
        raise ValueError(f"unpaired domains: y_iterations must be >= 1, got {y_iterations}")
    if snr_range is not None and not (len(snr_range) == 2 and snr_range[0] <= snr_range[1]):
        raise ValueError(f"unpaired domains: snr_range must be (low, high) dB, got {snr_range}")
    digits = load_phantoms(source, "train")
    available = _available(digits, "train")
    if int(count) > available:
        raise ValueError(
            f"unpaired domains: asked for {count} training phantoms, "
            f"{source or 'procedural phantoms'} has {available} in its training split"
        )
    grid = image_grid(size)
    kernel = blur.true_psf(grid)[0]
    half = int(count) // 2
    x_index = np.arange(half)
    y_index = np.arange(half, 2 * half)
    xs, ys, gains = [], [], []
    total = 2 * half
    for k, i in enumerate(np.concatenate([x_index, y_index]), start=1):
        p = phantom(digits, "train", int(i), seed, size, scale_range, shift, shift_axes)
        rng = _rng(seed, "train", int(i))
        in_x = k <= half
        snr = _snr(rng, snr_range) if in_x else y_snr_db
        native = XSpaceBlur(**{**blur.to_dict(), "snr_db": snr}).native(p, grid, rng, kernel)
        if in_x:
            xs.append(native / max(float(native.max()), 1e-12))
        else:
            deblurred = richardson_lucy_array(native, kernel, int(y_iterations), accelerate=True)
            top = max(float(deblurred.max()), 1e-12)
            gains.append(top / max(float(native.max()), 1e-12))
            ys.append(deblurred / top)
        if k == 1 or k % 50 == 0 or k == total:
            yield Progress(k, total, f"making domain {'X' if in_x else 'Y'} images: {k}/{total}")
    card = {
        "source": str(source) if source is not None else "procedural",
        "size": int(size),
        "fov_m": FOV,
        "pixel_size_m": FOV / size,
        "count": int(count),
        "x": f"native images (true PSF) of training phantoms 0..{half - 1}, SNR "
        + (f"uniform in {list(snr_range)} dB" if snr_range is not None else "none"),
        "y": f"Richardson-Lucy ({int(y_iterations)} accelerated iterations, true PSF) of native "
        f"images at {y_snr_db} dB of training phantoms {half}..{2 * half - 1}",
        "snr_range_db": list(snr_range) if snr_range is not None else None,
        "y_snr_db": y_snr_db,
        "y_iterations": int(y_iterations),
        "blur": blur.to_dict(),
        "seed": int(seed),
        "phantom_scale": [float(v) for v in scale_range],
        "phantom_shift": float(shift),
        "phantom_shift_axes": shift_axes,
        "scale": "every image / its own maximum",
    }
    gain = float(np.median(gains))
    card["y_gain"] = gain
    return UnpairedDomains(
        np.stack(xs).astype(np.float32),
        np.stack(ys).astype(np.float32),
        x_index,
        y_index,
        gain,
        card,
    )


def make_paired(
    source: str | Path | None,
    split: str,
    blur: XSpaceBlur,
    count: int,
    seed: int = 0,
    start: int = 0,
    size: int = SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """(native, phantom) pairs of ``split`` ("val" or "test"), images ``start ..
    start + count - 1``, native at ``blur.snr_db``; float32 (count, size, size), unscaled
    (phantom max 1, native in the same concentration units)."""
    if split not in ("val", "test"):
        raise ValueError(f"paired images are for validation or tests, got split {split!r}")
    digits = load_phantoms(source, split)
    available = _available(digits, split)
    if not (0 <= int(start) and int(start) + int(count) <= available and int(count) >= 1):
        raise ValueError(
            f"{split}: asked for images {start}..{int(start) + int(count) - 1}, "
            f"{source or 'procedural phantoms'} has {available} in its {split} split"
        )
    grid = image_grid(size)
    kernel = blur.true_psf(grid)[0]
    natives, phantoms = [], []
    for i in range(int(start), int(start) + int(count)):
        p = phantom(digits, split, i, seed, size)
        natives.append(blur.native(p, grid, _rng(seed, split, i), kernel))
        phantoms.append(p)
    return np.stack(natives), np.stack(phantoms)


def fitted_gain(image: np.ndarray, phantom: np.ndarray) -> float:
    """The least-squares gain a = <x, p> / <x, x> that brings ``image`` x closest to
    ``phantom`` p (0 for an all-zero image)."""
    x = np.asarray(image, dtype=np.float64)
    p = np.asarray(phantom, dtype=np.float64)
    denom = float(np.vdot(x, x))
    return float(np.vdot(x, p) / denom) if denom > 0 else 0.0


def scores(image: np.ndarray, phantom: np.ndarray) -> dict[str, float]:
    """PSNR (dB, peak = max(phantom)), SSIM (data range of the phantom) and NRMSE of
    ``image`` against ``phantom`` after the least-squares gain (:func:`fitted_gain`).

    x-space images, deconvolutions and network outputs are in different intensity units; the
    fitted gain removes the unit and gives every method its best global scale, so the numbers
    compare shapes, not calibrations. 2D arrays of one shape."""
    from ..metrics import nrmse, psnr, ssim

    x = np.asarray(image, dtype=np.float64)
    p = np.asarray(phantom, dtype=np.float64)
    if x.shape != p.shape or x.ndim != 2:
        raise ValueError(f"scores: image {x.shape} and phantom {p.shape} must be 2D, one shape")
    y = fitted_gain(x, p) * x
    return {"psnr": psnr(y, p), "ssim": ssim(y, p), "nrmse": nrmse(y, p)}
