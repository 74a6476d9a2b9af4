"""The enhancement methods in the one registry (``task="enhance"``): deconvolution baselines.

Each entry's ``solve(image, **params)`` is a generator yielding progress and returning an
:class:`~napari_mpi.image.MPIImage` on the image's grid. The PSF comes from the image's own
degradation card (``metadata["degradation"]``, written by :meth:`Degradation.apply`) when it
has one, else from the default :class:`~napari_mpi.enhance.Degradation` (the papers' scan).
The defaults of ``iterations`` and ``balance`` are those tuned on VesselMNIST3D validation
volumes by ``benchmarks/bench_enhance.py``.
"""

from __future__ import annotations

from collections.abc import Generator

from ..image import MPIImage
from ..progress import Progress
from ..recon.registry import Method, Param, register
from .deconvolution import (
    PADDINGS,
    RL_ITERATIONS,
    WIENER_BALANCE,
    check_volume,
    iter_richardson_lucy,
    iter_wiener,
)
from .degradation import Degradation


def degradation_of(image: MPIImage, method: str) -> Degradation:
    """The image's degradation card (``metadata["degradation"]``) or the default scan."""
    check_volume(image, method)
    card = image.metadata.get("degradation")
    return Degradation.from_dict(card) if card else Degradation()


def _richardson_lucy(
    image: MPIImage, iterations: int, accelerate: bool
) -> Generator[Progress, None, MPIImage]:
    degradation = degradation_of(image, "richardson-lucy")
    return (
        yield from iter_richardson_lucy(
            image, iterations, degradation=degradation, accelerate=accelerate
        )
    )


def _wiener(
    image: MPIImage, balance: float, padding: str, regulariser: str
) -> Generator[Progress, None, MPIImage]:
    degradation = degradation_of(image, "wiener")
    return (
        yield from iter_wiener(
            image, balance, degradation=degradation, regulariser=regulariser, padding=padding
        )
    )


register(
    Method(
        name="richardson-lucy",
        task="enhance",
        title="Richardson-Lucy deconvolution",
        description="Richardson-Lucy deconvolution with the layered scan's PSF",
        solve=_richardson_lucy,
        params=(
            Param("iterations", int, RL_ITERATIONS, "RL iterations", 1, 100000),
            Param("accelerate", bool, True, "Biggs-Andrews acceleration"),
        ),
        reference="Richardson 1972, Lucy 1974; Biggs and Andrews 1997",
        order=210,
    )
)
register(
    Method(
        name="wiener",
        task="enhance",
        title="Wiener deconvolution",
        description="Wiener-Hunt deconvolution (Laplacian regulariser) with the scan's PSF",
        solve=_wiener,
        params=(
            Param("balance", float, WIENER_BALANCE, "regularisation weight (> 0)", 1e-12, 1e6),
            Param(
                "padding",
                "choice",
                "reflect",
                "how the volume is extended on the FFT grid",
                choices=PADDINGS,
            ),
            Param(
                "regulariser",
                "choice",
                "laplacian",
                "Laplacian (as scikit-image) or identity",
                choices=("laplacian", "identity"),
            ),
        ),
        reference="Wiener 1949; Hunt 1971 (scikit-image restoration.wiener)",
        order=220,
    )
)
