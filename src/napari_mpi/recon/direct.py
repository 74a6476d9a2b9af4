"""CGNR and the regularised pseudo-inverse, kept importable from here for older scripts; they
live in :mod:`napari_mpi.recon.cgnr` and :mod:`napari_mpi.recon.pinv`."""

from __future__ import annotations

from .cgnr import cgnr, iter_cgnr
from .pinv import iter_pinv, pinv, reconstruction_matrix

__all__ = ["cgnr", "iter_cgnr", "iter_pinv", "pinv", "reconstruction_matrix"]
