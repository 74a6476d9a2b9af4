"""Deconvolution of 2D x-space images with the nominal PSF: what a user without DC_GAN does,
with the parameters the DC_GAN benchmark tuned (``benchmarks/bench_dcgan.py``: the best mean
PSNR on 50 validation digits at 40 dB with the default
:class:`~napari_mpi.simulation.psf_mismatch.XSpaceBlur`; see docs/benchmarks.md).

:func:`nominal_deconvolutions` returns the Wiener and Richardson-Lucy results of one native
image with the nominal (or, as an upper reference, the true) PSF. Numpy only.
"""

from __future__ import annotations

import numpy as np

from ..simulation.psf_mismatch import XSpaceBlur
from .deconvolution import richardson_lucy_array, wiener_array
from .unpaired import image_grid

__all__ = ["METHODS", "TUNED", "nominal_deconvolutions"]

#: tuned on 50 validation digits at 40 dB (bench_dcgan.py), per PSF
TUNED = {
    "nominal": {"wiener_balance": 1e-3, "wiener_regulariser": "identity", "rl_iterations": 100},
    "true": {"wiener_balance": 1e-2, "wiener_regulariser": "identity", "rl_iterations": 400},
}


METHODS = ("wiener", "richardson-lucy")


def nominal_deconvolutions(
    native: np.ndarray,
    blur: XSpaceBlur | None = None,
    psf: str = "nominal",
    which: tuple[str, ...] = METHODS,
) -> dict[str, np.ndarray]:
    """``{"wiener": ..., "richardson-lucy": ...}`` (those named in ``which``) of a (ny, nx)
    native image on the default 20 x 20 mm grid of its size, with the ``psf`` ("nominal" or
    "true") of ``blur`` and the :data:`TUNED` parameters."""
    unknown = sorted(set(which) - set(METHODS))
    if unknown:
        raise ValueError(f"which: unknown deconvolutions {unknown}; known: {list(METHODS)}")
    if psf not in TUNED:
        raise ValueError(f"psf must be one of {sorted(TUNED)}, got {psf!r}")
    a = np.asarray(native, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expects a square 2D native image, got shape {a.shape}")
    blur = blur or XSpaceBlur()
    grid = image_grid(a.shape[0])
    kernel = (blur.nominal_psf(grid) if psf == "nominal" else blur.true_psf(grid))[0]
    t = TUNED[psf]
    out = {}
    if "wiener" in which:
        out["wiener"] = wiener_array(a, kernel, t["wiener_balance"], t["wiener_regulariser"])
    if "richardson-lucy" in which:
        out["richardson-lucy"] = richardson_lucy_array(a, kernel, t["rl_iterations"],
                                                       accelerate=True)  # fmt: skip
    return out
