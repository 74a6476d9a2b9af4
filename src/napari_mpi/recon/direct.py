"""Deprecated home of CGNR and the regularised pseudo-inverse: they live in
:mod:`napari_mpi.recon.cgnr` and :mod:`napari_mpi.recon.pinv` (findable by name). Importing this
module still works and warns."""

from __future__ import annotations

import warnings

from .cgnr import cgnr, iter_cgnr
from .pinv import iter_pinv, pinv, reconstruction_matrix

warnings.warn(
    "napari_mpi.recon.direct is deprecated: import from napari_mpi.recon.cgnr and "
    "napari_mpi.recon.pinv",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["cgnr", "iter_cgnr", "iter_pinv", "pinv", "reconstruction_matrix"]
