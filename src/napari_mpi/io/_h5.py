"""Small h5py helpers shared by the MDF reader and writer (strings, complex data, index runs)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

COMPLEX_FIELD_NAMES = (("r", "i"), ("real", "imag"), ("re", "im"))


def decode(value: object) -> object:
    """Turn what h5py returns for a small dataset into plain Python values.

    Bytes become ``str``; zero-dimensional arrays and numpy scalars become Python scalars;
    arrays of strings become nested lists of ``str``; numeric arrays stay numpy arrays.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            flat = [decode(v) for v in value.ravel()]
            return np.array(flat, dtype=object).reshape(value.shape).tolist()
        if value.ndim == 0:
            return value.item()
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def is_complex_compound(dtype: np.dtype) -> bool:
    """True when ``dtype`` is a two-field compound of floats naming a real and imaginary part."""
    names = dtype.names
    if names is None or len(names) != 2:
        return False
    return tuple(n.lower() for n in names) in COMPLEX_FIELD_NAMES


def compound_to_complex(arr: np.ndarray) -> np.ndarray:
    """Convert a structured (real, imag) array to a complex one of matching precision."""
    re_name, im_name = arr.dtype.names
    real = np.asarray(arr[re_name])
    dtype = np.complex64 if real.dtype.itemsize <= 4 else np.complex128
    out = np.empty(real.shape, dtype=dtype)
    out.real = real
    out.imag = arr[im_name]
    return out


def index_runs(indices: np.ndarray, max_gap: int = 0) -> Iterator[tuple[int, int, np.ndarray]]:
    """Group sorted indices into runs that can be read with one hyperslab each.

    Parameters
    ----------
    indices : ndarray of int
        Sorted, unique indices.
    max_gap : int
        Indices up to this many positions apart are merged into one run (the unused positions
        are read and dropped), which trades a little extra reading for fewer HDF5 calls.

    Yields
    ------
    start, stop : int
        The half-open range to read.
    take : ndarray of int
        Positions of the wanted indices inside ``range(start, stop)``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        return
    breaks = np.flatnonzero(np.diff(indices) > max_gap + 1) + 1
    for run in np.split(indices, breaks):
        start = int(run[0])
        yield start, int(run[-1]) + 1, run - start
