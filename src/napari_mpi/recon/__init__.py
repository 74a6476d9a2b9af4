"""Reconstruction: the registry of methods and the ``reconstruct`` entry point.

Importing this package is light: the method modules (and torch, the simulator) are imported the
first time a method is asked for (:data:`~napari_mpi.recon.registry.BUILTIN_MODULES`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from ..frequency_selection import FrequencySelection
from ..image import MPIImage
from ..progress import Progress, run
from ..system_matrix import SystemMatrix
from .registry import Method, Param, enhance, get_method, iter_enhance, methods, register

#: the frequency selection of :func:`reconstruct` when none is given (see
#: :class:`~napari_mpi.FrequencySelection`: an SNR threshold from the calibration's SNR)
DEFAULT_SELECTION = FrequencySelection(snr_threshold="auto")


def iter_reconstruct(
    system_matrix: SystemMatrix,
    measurements: np.ndarray,
    method: str = "kaczmarz",
    selection: FrequencySelection | dict | str | None = "auto",
    **params,
) -> Generator[Progress, None, MPIImage]:
    """Reconstruct frames with a registered method, yielding progress (cancel at any yield).

    Parameters
    ----------
    system_matrix : SystemMatrix
        The calibration (rows x voxels).
    measurements : ndarray, shape (frames, rows) or (rows,)
        Measurements aligned with the system matrix's rows (``MDFFile.measurements(sm)``).
    method : str
        A registered reconstruction method (``napari_mpi.methods("reconstruct")``).
    selection : FrequencySelection, dict, "auto" or None
        Rows to use, applied to the system matrix and the measurements together. "auto" (the
        default) keeps rows with calibration SNR >= 2 (``AUTO_SNR_THRESHOLD``), unless the
        system matrix was already selected by SNR (by the reader or ``select_frequencies``); None
        uses every row. Methods that read their own rows (DERnet, the cascaded network:
        ``Method.selects_rows``) ignore it and take the rows their model was trained on.
    **params
        The method's parameters (``napari-mpi methods`` lists them with their defaults).

    Returns
    -------
    MPIImage
        ``data`` float32 (frames, z, y, x), non-negative, on the system matrix's grid, with
        the method, parameters and the number of rows used in ``metadata``.
    """
    from .selection import apply_selection

    entry = get_method(method, task="reconstruct")
    checked = entry.check_params(params)
    sm, u = system_matrix, measurements
    if not entry.selects_rows:
        sm, u = apply_selection(sm, u, FrequencySelection.coerce(selection))
    images = yield from entry.solve(sm, u, **checked)
    images = np.asarray(images, dtype=np.float32)
    data = images.reshape((images.shape[0], *system_matrix.grid_shape))
    meta: dict[str, Any] = {"method": method, "params": checked, "source": system_matrix.source}
    if sm is not system_matrix:
        meta["rows_used"] = sm.num_rows
        meta["frequency_selection"] = sm.metadata.get("frequency_selection")
    return MPIImage(data, system_matrix.fov, system_matrix.center, metadata=meta)


def reconstruct(
    system_matrix: SystemMatrix,
    measurements: np.ndarray,
    method: str = "kaczmarz",
    selection: FrequencySelection | dict | str | None = "auto",
    **params,
) -> MPIImage:
    """Reconstruct frames (see :func:`iter_reconstruct`); ``napari_mpi.methods()`` lists the
    methods and their parameters.

    Examples
    --------
    >>> img = reconstruct(sm, u, method="admm", regularization="l1+tv", lam=0.01)  # doctest: +SKIP
    >>> img.data.shape                                                              # doctest: +SKIP
    (1, 1, 19, 19)
    """
    return run(iter_reconstruct(system_matrix, measurements, method, selection, **params))


def __getattr__(name: str):
    # names that used to be imported eagerly: the method modules and kaczmarz_reference
    if name == "kaczmarz_reference":
        from .kaczmarz import kaczmarz_reference

        return kaczmarz_reference
    if name in (
        "admm",
        "admmnet",
        "cascaded",
        "cgnr",
        "dernet",
        "dip",
        "direct",
        "kaczmarz",
        "pinv",
        "ppmpi",
    ):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_SELECTION",
    "FrequencySelection",
    "Method",
    "Param",
    "enhance",
    "get_method",
    "iter_enhance",
    "iter_reconstruct",
    "kaczmarz_reference",
    "methods",
    "reconstruct",
    "register",
]
