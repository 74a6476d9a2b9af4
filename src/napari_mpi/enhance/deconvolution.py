"""Deconvolution baselines: Richardson-Lucy and Wiener with the scan's PSF.

Both take a 3D :class:`~napari_mpi.image.MPIImage` and return one on the same grid, each frame
deconvolved on its own. The PSF comes from a :class:`~napari_mpi.enhance.Degradation` on the
image's grid (default: the papers' layered scan) or is given as an array (z, y, x) with odd
sizes, centred, at most 2n-1 voxels along an axis of n voxels.

The forward model is linear convolution with the volume taken as zero outside its grid (a
simulated phantom is), computed by FFT on a padded grid with the PSF's transform cached across
iterations. scikit-image's ``restoration.richardson_lucy`` recomputes that transform every
iteration (about 10x slower here) and its ``wiener`` is circular and needs a PSF no larger than
the image, while the layered-scan PSF is 2n-1 wide; the Wiener filter below is skimage's
(Laplacian regulariser, ``balance``) on a padded grid, and equals it for ``padding="periodic"``.
The array functions work for any number of dimensions (2D images for DC_GAN's baselines).
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np
from scipy import fft as sfft

from ..image import MPIImage
from ..profiles import fwhm
from ..progress import Progress, run
from .degradation import Degradation

PADDINGS = ("zero", "reflect", "edge", "periodic")
#: Defaults tuned for the default ``Degradation()`` on VesselMNIST3D validation volumes (32^3,
#: 1 mm; ``benchmarks/bench_enhance.py``): RL peaks near 400 accelerated iterations, Wiener
#: at balance 1e-3 with reflected padding.
RL_ITERATIONS = 400
WIENER_BALANCE = 1e-3


# -- checks --------------------------------------------------------------------------------------
def check_volume(image: MPIImage, method: str) -> None:
    """Refuse what a 3D method cannot take: not an MPIImage, no frames, a 2D image, NaN/Inf."""
    if not isinstance(image, MPIImage):
        raise ValueError(f"{method}: expects an MPIImage, got {type(image).__name__}")
    if image.data.size == 0:
        raise ValueError(f"{method}: the image is empty (data shape {image.data.shape})")
    flat = [a for a, n in zip("zyx", image.grid_shape, strict=True) if n < 2]
    if flat:
        raise ValueError(
            f"{method}: expects a 3D volume (z, y, x) with at least 2 voxels per axis, got grid "
            f"{image.grid_shape} (a 2D image: axis {', '.join(flat)} has one voxel)"
        )
    bad = int(np.count_nonzero(~np.isfinite(image.data)))
    if bad:
        raise ValueError(
            f"{method}: the image has {bad} NaN or infinite voxel(s); replace them first"
        )


def check_psf(psf: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
    """Validate a PSF for a volume of ``shape`` and return it normalised to sum 1 (float64).

    Refuses a PSF of another dimensionality, even or oversized extents (over 2n-1 voxels),
    NaN/Inf, negative sums, and a volume smaller than the PSF's core (fewer voxels along an
    axis than its FWHM in voxels).
    """
    k = np.asarray(psf, dtype=np.float64)
    if k.ndim != len(shape):
        raise ValueError(f"{method}: the PSF must be {len(shape)}D like the image, got {k.shape}")
    if not np.all(np.isfinite(k)) or k.sum() <= 0:
        raise ValueError(f"{method}: the PSF must be finite with a positive sum")
    if any(s % 2 == 0 for s in k.shape):
        raise ValueError(f"{method}: the PSF needs an odd size per axis (centred), got {k.shape}")
    if any(m > 2 * n - 1 for m, n in zip(k.shape, shape, strict=True)):
        raise ValueError(
            f"{method}: the volume {shape} is smaller than the PSF {k.shape}: at most 2n-1 "
            "voxels per axis of n (crop the PSF or enlarge the volume)"
        )
    centre = np.unravel_index(np.argmax(k), k.shape)
    for axis, n in enumerate(shape):
        index = list(centre)
        index[axis] = slice(None)
        width = fwhm(k[tuple(index)]) if k.shape[axis] >= 3 else 1.0
        if not np.isfinite(width) or width > n:
            raise ValueError(
                f"{method}: the volume is smaller than the PSF: its core (FWHM) spans "
                f"{'more than the PSF' if not np.isfinite(width) else f'{width:.1f}'} voxels "
                f"along axis {axis} but the volume has {n}"
            )
    return k / k.sum()


def _padding(padding: str, method: str) -> str:
    if padding not in PADDINGS:
        raise ValueError(f"{method}: padding must be one of {list(PADDINGS)}, got {padding!r}")
    return padding


# -- FFT convolution with a cached transfer function ---------------------------------------------
class _Convolver:
    """'same'-size linear convolution (and correlation) of n-D arrays with one PSF by FFT.

    The FFT grid has n + (m-1)/2 points per axis (n volume, m PSF voxels): enough that no
    wrapped-around tap reaches a voxel of the volume from another one, so the part on the
    volume is the linear convolution of the zero-extended volume.
    """

    def __init__(
        self, shape: tuple[int, ...], psf: np.ndarray, padding: str = "zero", dtype=np.float64
    ):
        self.shape = tuple(shape)
        self.padding = padding
        if padding == "periodic":
            self.fft_shape = self.shape
            self.before = (0,) * len(shape)
            kernel = _fold(psf, self.shape)
        else:
            self.fft_shape = tuple(
                sfft.next_fast_len(n + (m - 1) // 2, real=True)
                for n, m in zip(shape, psf.shape, strict=True)
            )
            self.before = tuple((p - n) // 2 for p, n in zip(self.fft_shape, shape, strict=True))
            kernel = _fold(psf, self.fft_shape)
        self.transfer = sfft.rfftn(kernel, s=self.fft_shape, workers=1)
        if dtype == np.float32:
            self.transfer = self.transfer.astype(np.complex64)

    def pad(self, x: np.ndarray) -> np.ndarray:
        """``x`` placed in the FFT grid (zero, mirrored or edge values around it)."""
        if self.padding == "periodic":
            return x
        mode = {"zero": "constant", "reflect": "symmetric", "edge": "edge"}[self.padding]
        return np.pad(x, self._widths(), mode=mode)

    def _widths(self) -> list[tuple[int, int]]:
        return [
            (b, p - n - b) for b, p, n in zip(self.before, self.fft_shape, self.shape, strict=True)
        ]

    def crop(self, x: np.ndarray) -> np.ndarray:
        """The part of an FFT-grid array that lies on the volume."""
        return x[tuple(slice(b, b + n) for b, n in zip(self.before, self.shape, strict=True))]

    def apply(self, spectrum: np.ndarray) -> np.ndarray:
        """Inverse transform of a spectrum on the FFT grid, cropped to the volume."""
        return self.crop(sfft.irfftn(spectrum, s=self.fft_shape, workers=1))

    def convolve(self, x: np.ndarray, adjoint: bool = False) -> np.ndarray:
        """h * x (``adjoint``: the correlation h^T x), 'same' size, zero outside the volume."""
        t = np.conj(self.transfer) if adjoint else self.transfer
        padded = x if self.padding == "periodic" else self._zero_pad(x)
        return self.apply(sfft.rfftn(padded, s=self.fft_shape, workers=1) * t)

    def _zero_pad(self, x: np.ndarray) -> np.ndarray:
        return np.pad(x, self._widths())


def _fold(psf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The centred PSF moved so its centre is at index 0 of a ``shape`` grid (wrapped)."""
    out = np.zeros(shape)
    idx = np.ix_(
        *[(np.arange(m) - (m - 1) // 2) % p for m, p in zip(psf.shape, shape, strict=True)]
    )
    np.add.at(out, idx, psf)
    return out


# -- array functions -----------------------------------------------------------------------------
def _rl_steps(
    data: np.ndarray,
    psf: np.ndarray,
    iterations: int,
    padding: str,
    epsilon: float,
    accelerate: bool = False,
) -> Generator[tuple[int, np.ndarray], None, None]:
    """The Richardson-Lucy iterates (k, x_k), k = 1..iterations.

    ``accelerate``: Biggs-Andrews vector extrapolation (1997): the RL step is taken from
    y_k = x_k + a_k (x_k - x_{k-1}), a_k = <g_{k-1}, g_{k-2}> / <g_{k-2}, g_{k-2}> in [0, 1),
    g the change an RL step made; y_k is clipped at 0.
    """
    if int(iterations) < 1:
        raise ValueError(f"richardson-lucy: iterations must be >= 1, got {iterations}")
    y = np.clip(np.asarray(data, dtype=np.float32), 0, None)
    mode = "periodic" if padding == "periodic" else "zero"
    conv = _Convolver(y.shape, np.asarray(psf, np.float64) / np.sum(psf), mode, np.float32)
    sensitivity = np.maximum(conv.convolve(np.ones_like(y), adjoint=True), 1e-6)
    floor = epsilon * max(float(y.max()), 1e-30)  # relative to the data: float32 round-off

    def step(x: np.ndarray) -> np.ndarray:
        ratio = y / np.maximum(conv.convolve(x), floor)
        return x * np.clip(conv.convolve(ratio, adjoint=True), 0, None) / sensitivity

    x = np.full(y.shape, max(float(y.mean()), floor), dtype=np.float32)
    x_prev = g_prev = g_prev2 = None
    for k in range(1, int(iterations) + 1):
        point = x
        if accelerate and g_prev is not None and g_prev2 is not None:
            norm2 = float(np.vdot(g_prev2, g_prev2))
            alpha = float(np.vdot(g_prev, g_prev2)) / norm2 if norm2 > 0 else 0.0
            point = np.clip(x + min(max(alpha, 0.0), 0.999) * (x - x_prev), 0, None)
        new = step(point)
        if accelerate:
            g_prev2, g_prev = g_prev, new - point
            x_prev = x
        x = new
        yield k, x


def richardson_lucy_array(
    data: np.ndarray,
    psf: np.ndarray,
    iterations: int = RL_ITERATIONS,
    padding: str = "zero",
    epsilon: float = 1e-6,
    callback: Callable[[int, np.ndarray], object] | None = None,
    accelerate: bool = False,
) -> np.ndarray:
    """Richardson-Lucy deconvolution of an n-D array (float32 FFTs and result, same shape).

    x_{k+1} = x_k / H^T 1 * H^T (y / (H x_k)), from a flat start (the mean of y). y is clipped
    at 0 first (RL needs non-negative data); the division is guarded at ``epsilon`` x max(y).
    Dividing by H^T 1 (the sensitivity of each voxel, < 1 near the edges for a PSF wider than
    the volume) keeps the fixed point unbiased where skimage's form leaves it out.
    ``callback(k, x_k)`` is called after every iteration (k = 1..iterations). ``padding`` is
    "zero" or "periodic" (the forward model); RL takes "reflect"/"edge" as "zero".
    ``accelerate``: Biggs-Andrews extrapolation (fewer iterations for the same sharpness).
    """
    x = None
    for k, x in _rl_steps(data, psf, iterations, padding, epsilon, accelerate):
        if callback is not None:
            callback(k, x)
    return x


def wiener_array(
    data: np.ndarray,
    psf: np.ndarray,
    balance: float = WIENER_BALANCE,
    regulariser: str = "laplacian",
    padding: str = "reflect",
) -> np.ndarray:
    """Wiener-Hunt deconvolution of an n-D array (float64 result, same shape).

    X = conj(H) Y / (|H|^2 + balance |D|^2) with D the discrete Laplacian (``"laplacian"``,
    as scikit-image) or 1 (``"identity"``), on an FFT grid padded around the volume by
    ``padding`` ("reflect", "edge", "zero") or none ("periodic": circular, skimage's form).
    """
    if not np.isfinite(balance) or balance <= 0:
        raise ValueError(f"wiener: balance must be a positive number, got {balance}")
    if regulariser not in ("laplacian", "identity"):
        raise ValueError(
            f"wiener: regulariser must be 'laplacian' or 'identity', got {regulariser!r}"
        )
    y = np.asarray(data, dtype=np.float64)
    conv = _Convolver(y.shape, np.asarray(psf, np.float64) / np.sum(psf), padding)
    h = conv.transfer
    if regulariser == "laplacian":
        reg = np.zeros(h.shape)
        for axis, p in enumerate(conv.fft_shape):
            n = h.shape[axis]
            freq = np.arange(n) / p
            shape = [1] * h.ndim
            shape[axis] = n
            reg = reg + (2 - 2 * np.cos(2 * np.pi * freq)).reshape(shape)
        reg2 = reg**2
    else:
        reg2 = 1.0
    spectrum = sfft.rfftn(conv.pad(y), s=conv.fft_shape, workers=1)
    return conv.apply(np.conj(h) * spectrum / (np.abs(h) ** 2 + balance * reg2))


# -- MPIImage methods ----------------------------------------------------------------------------
def _psf_for(
    image: MPIImage, psf: np.ndarray | None, degradation: Degradation | None, method: str
) -> tuple[np.ndarray, dict]:
    if psf is not None and degradation is not None:
        raise ValueError(f"{method}: give either psf or degradation, not both")
    if psf is None:
        degradation = degradation or Degradation()
        kernel = degradation.psf(image.grid)
        info = {"psf": "degradation", "degradation": degradation.to_dict()}
    else:
        kernel, info = psf, {"psf": "given", "psf_shape_zyx": list(np.shape(psf))}
    return check_psf(kernel, image.grid_shape, method), info


def iter_richardson_lucy(
    image: MPIImage,
    iterations: int = RL_ITERATIONS,
    psf: np.ndarray | None = None,
    degradation: Degradation | None = None,
    accelerate: bool = True,
) -> Generator[Progress, None, MPIImage]:
    """Richardson-Lucy deconvolution of a 3D image, yielding progress per iteration.

    Parameters
    ----------
    image : MPIImage
        A 3D volume (frames, z, y, x), at least 2 voxels per axis, finite.
    iterations : int
        RL iterations (>= 1); more sharpens and amplifies noise.
    psf : ndarray (z, y, x), optional
        The PSF on the image's voxels (odd sizes, centred); default from ``degradation``.
    degradation : Degradation, optional
        The scan whose PSF is used; default ``Degradation()`` (the papers' scan).
    accelerate : bool
        Biggs-Andrews extrapolation (default): the wide layered-scan PSF needs hundreds of
        plain RL iterations; accelerated, the same sharpness takes a few times fewer.

    Returns
    -------
    MPIImage
        The deconvolved image on the same grid (non-negative), parameters in ``metadata``.
    """
    method = "richardson-lucy"
    check_volume(image, method)
    if int(iterations) < 1:
        raise ValueError(f"{method}: iterations must be >= 1, got {iterations}")
    kernel, info = _psf_for(image, psf, degradation, method)
    n = int(iterations)
    frames = []
    for f, frame in enumerate(image.data):
        last = None
        for k, estimate in _rl_steps(frame, kernel, n, "zero", 1e-6, accelerate):
            last = estimate
            yield Progress(f * n + k, image.num_frames * n, f"{method}: iteration {k} of {n}")
        frames.append(last)
    meta = {
        **image.metadata,
        "method": method,
        "iterations": n,
        "accelerate": bool(accelerate),
        **info,
    }
    return MPIImage(np.stack(frames).astype(np.float32), image.fov, image.center, metadata=meta)


def richardson_lucy(
    image: MPIImage,
    iterations: int = RL_ITERATIONS,
    psf: np.ndarray | None = None,
    degradation: Degradation | None = None,
    accelerate: bool = True,
) -> MPIImage:
    """Richardson-Lucy deconvolution of a 3D image (see :func:`iter_richardson_lucy`)."""
    return run(iter_richardson_lucy(image, iterations, psf, degradation, accelerate))


def iter_wiener(
    image: MPIImage,
    balance: float = WIENER_BALANCE,
    psf: np.ndarray | None = None,
    degradation: Degradation | None = None,
    regulariser: str = "laplacian",
    padding: str = "reflect",
) -> Generator[Progress, None, MPIImage]:
    """Wiener deconvolution of a 3D image, yielding progress per frame.

    Parameters
    ----------
    image : MPIImage
        A 3D volume (frames, z, y, x), at least 2 voxels per axis, finite.
    balance : float
        Regularisation weight (> 0) against the PSF's transfer function, which peaks at 1;
        larger is smoother.
    psf, degradation :
        As for :func:`iter_richardson_lucy`.
    regulariser : {"laplacian", "identity"}
    padding : {"reflect", "edge", "zero", "periodic"}
        How the volume is extended on the FFT grid.

    Returns
    -------
    MPIImage
        The deconvolved image on the same grid (may be negative), parameters in ``metadata``.
    """
    method = "wiener"
    check_volume(image, method)
    _padding(padding, method)
    kernel, info = _psf_for(image, psf, degradation, method)
    frames = []
    for f, frame in enumerate(image.data):
        frames.append(wiener_array(frame, kernel, balance, regulariser, padding))
        yield Progress(f + 1, image.num_frames, f"{method}: frame {f + 1}")
    meta = {
        **image.metadata,
        "method": method,
        "balance": float(balance),
        "regulariser": regulariser,
        "padding": padding,
        **info,
    }
    return MPIImage(np.stack(frames).astype(np.float32), image.fov, image.center, metadata=meta)


def wiener(
    image: MPIImage,
    balance: float = WIENER_BALANCE,
    psf: np.ndarray | None = None,
    degradation: Degradation | None = None,
    regulariser: str = "laplacian",
    padding: str = "reflect",
) -> MPIImage:
    """Wiener deconvolution of a 3D image (see :func:`iter_wiener`)."""
    return run(iter_wiener(image, balance, psf, degradation, regulariser, padding))
