"""napari-mpi: Magnetic Particle Imaging in napari and Python.

The public API is re-exported here; heavy optional parts (torch networks, napari widgets) are
imported only where they are used.
"""

from ._version import __version__
from .acquisition import Acquisition
from .grid import Grid
from .image import MPIImage
from .io import (
    MDFError,
    MDFFile,
    is_mdf,
    read_mdf,
    write_calibration,
    write_mdf,
    write_measurement,
    write_reconstruction,
)
from .recon import iter_reconstruct, methods, reconstruct
from .system_matrix import SystemMatrix

__all__ = [
    "Acquisition",
    "Grid",
    "MDFError",
    "MDFFile",
    "MPIImage",
    "SystemMatrix",
    "__version__",
    "is_mdf",
    "iter_reconstruct",
    "methods",
    "read_mdf",
    "reconstruct",
    "write_calibration",
    "write_mdf",
    "write_measurement",
    "write_reconstruction",
]
