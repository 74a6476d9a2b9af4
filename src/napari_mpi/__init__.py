"""napari-mpi: Magnetic Particle Imaging in napari and Python.

The public API is re-exported here. Importing the package is light (no torch, no simulator, no
``scipy.signal``): the subpackages ``metrics``, ``simulation``, ``recon``, ``nn``, ... are
attributes loaded on first use (``nm.metrics.compare``), and a method's module is imported when
the method is first asked for.
"""

import importlib as _importlib

from ._version import __version__
from .acquisition import Acquisition
from .frequency_selection import FrequencySelection
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
from .recon import enhance as enhance_image
from .recon import iter_enhance, iter_reconstruct, methods, reconstruct
from .system_matrix import SystemMatrix

#: subpackages and modules reachable as attributes (``nm.metrics``), imported on first use
_LAZY_MODULES = (
    "acquisition",
    "cli",
    "datasets",
    "enhance",
    "frequency_selection",
    "grid",
    "image",
    "io",
    "metrics",
    "nn",
    "profiles",
    "progress",
    "recon",
    "resample",
    "simulation",
    "system_matrix",
)


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        try:
            module = _importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_MODULES})


__all__ = [
    "Acquisition",
    "FrequencySelection",
    "Grid",
    "MDFError",
    "MDFFile",
    "MPIImage",
    "SystemMatrix",
    "__version__",
    "enhance_image",
    "is_mdf",
    "iter_enhance",
    "iter_reconstruct",
    "methods",
    "read_mdf",
    "reconstruct",
    "write_calibration",
    "write_mdf",
    "write_measurement",
    "write_reconstruction",
]
