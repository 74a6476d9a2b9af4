"""MDF (HDF5) reading and writing."""

from .errors import MDFError
from .mdf_reader import MDFFile, is_mdf, read_mdf
from .mdf_writer import write_calibration, write_mdf, write_measurement, write_reconstruction

__all__ = [
    "MDFError",
    "MDFFile",
    "is_mdf",
    "read_mdf",
    "write_calibration",
    "write_mdf",
    "write_measurement",
    "write_reconstruction",
]
