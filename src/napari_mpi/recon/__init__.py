"""Reconstruction: one registry of methods and the ``reconstruct`` entry point."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from ..image import MPIImage
from ..progress import Progress, run
from ..system_matrix import SystemMatrix
from . import admm, cascaded, dernet, direct, kaczmarz, ppmpi  # noqa: F401  (registers)
from .kaczmarz import kaczmarz_reference
from .registry import Method, Param, get_method, methods, register


def iter_reconstruct(
    system_matrix: SystemMatrix,
    measurements: np.ndarray,
    method: str = "kaczmarz",
    **params,
) -> Generator[Progress, None, MPIImage]:
    """Reconstruct frames with a registered method, yielding progress (cancel at any yield).

    Returns an :class:`MPIImage` whose ``data`` is float32 (frames, z, y, x), non-negative,
    on the system matrix's grid, with the method and parameters in ``metadata``.
    """
    entry = get_method(method)
    checked = entry.check_params(params)
    images = yield from entry.solve(system_matrix, measurements, **checked)
    images = np.asarray(images, dtype=np.float32)
    data = images.reshape((images.shape[0], *system_matrix.grid_shape))
    meta = {"method": method, "params": checked, "source": system_matrix.source}
    return MPIImage(data, system_matrix.fov, system_matrix.center, metadata=meta)


def reconstruct(
    system_matrix: SystemMatrix, measurements: np.ndarray, method: str = "kaczmarz", **params
) -> MPIImage:
    """Reconstruct frames (see :func:`iter_reconstruct`); ``napari_mpi.methods()`` lists the
    methods and their parameters.

    Examples
    --------
    >>> img = reconstruct(sm, u, method="admm", regularization="l1+tv", lam=0.01)  # doctest: +SKIP
    >>> img.data.shape                                                              # doctest: +SKIP
    (1, 1, 19, 19)
    """
    return run(iter_reconstruct(system_matrix, measurements, method, **params))


__all__ = [
    "Method",
    "Param",
    "get_method",
    "iter_reconstruct",
    "kaczmarz_reference",
    "methods",
    "reconstruct",
    "register",
]
