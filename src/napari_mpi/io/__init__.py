"""MDF (HDF5) reading and writing."""

from ._safe_write import MDFWriteError
from .errors import MDFError, MDFFileNotFoundError
from .limits import memory_limit, set_memory_limit
from .mdf_reader import MDFFile, is_mdf, read_mdf
from .mdf_writer import write_calibration, write_mdf, write_measurement, write_reconstruction

__all__ = [
    "MDFError",
    "MDFFile",
    "MDFFileNotFoundError",
    "MDFWriteError",
    "is_mdf",
    "memory_limit",
    "read_mdf",
    "set_memory_limit",
    "write_calibration",
    "write_mdf",
    "write_measurement",
    "write_reconstruction",
]
