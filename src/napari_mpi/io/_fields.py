"""Typed access to the fields of an open MDF file, turning every failure into an MDFError."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from ._h5 import compound_to_complex, decode, is_complex_compound
from .errors import MDFError

_H5_FAILURES = (OSError, KeyError, TypeError, ValueError, IndexError, RuntimeError)


class FieldReader:
    """Reads named fields of an open HDF5 file with type and shape checks.

    Every method raises :class:`MDFError` naming the file and field on a missing, mistyped or
    mis-shaped field, or when HDF5 cannot read it (a truncated file, for example).
    """

    def __init__(self, handle: h5py.File, path: Path) -> None:
        self.h5 = handle
        self.path = path

    @contextlib.contextmanager
    def guard(self, field: str | None) -> Iterator[None]:
        """Re-raise low-level failures inside the block as MDFError for ``field``."""
        try:
            yield
        except MDFError:
            raise
        except _H5_FAILURES as exc:
            raise MDFError(
                self.path, field, f"could not be read ({type(exc).__name__}: {exc})"
            ) from exc

    def error(self, field: str | None, message: str) -> MDFError:
        return MDFError(self.path, field, message)

    def has(self, field: str) -> bool:
        with self.guard(field):
            return field in self.h5

    def dataset(self, field: str) -> h5py.Dataset:
        """The dataset at ``field``; MDFError when it is missing or is a group."""
        with self.guard(field):
            if field not in self.h5:
                raise self.error(field, "is missing")
            obj = self.h5[field]
        if not isinstance(obj, h5py.Dataset):
            raise self.error(field, f"expected a dataset, found {type(obj).__name__}")
        return obj

    def raw(self, field: str) -> np.ndarray:
        """The whole dataset as an array (for small fields)."""
        ds = self.dataset(field)
        with self.guard(field):
            value = ds[()]
        return np.asarray(value)

    def array(
        self,
        field: str,
        *,
        kind: str = "f",
        ndim: tuple[int, ...] | None = None,
        size: int | None = None,
    ) -> np.ndarray:
        """A numeric field as an array.

        Parameters
        ----------
        kind : {"f", "i", "c"}
            Expected numbers: real (float or integer), integer, or complex (native complex, an
            r/i compound, or real with a trailing axis of length 2).
        ndim : tuple of int, optional
            Allowed numbers of dimensions.
        size : int, optional
            Required number of elements.
        """
        ds = self.dataset(field)
        dtype = ds.dtype
        if kind == "c":
            with self.guard(field):
                value = ds[()]
            value = np.asarray(value)
            if value.dtype.names is not None:
                if not is_complex_compound(value.dtype):
                    raise self.error(
                        field, f"expected complex numbers (r/i compound), found {value.dtype}"
                    )
                value = compound_to_complex(value)
            elif value.dtype.kind in "iuf":
                if value.ndim == 0 or value.shape[-1] != 2:
                    raise self.error(
                        field,
                        f"expected complex data (r/i compound or a trailing axis of length 2), "
                        f"found real data of shape {value.shape}",
                    )
                value = value[..., 0] + 1j * value[..., 1]
            elif value.dtype.kind != "c":
                raise self.error(field, f"expected complex numbers, found {value.dtype}")
        else:
            allowed = "iub" if kind == "i" else "iufb"
            if dtype.kind not in allowed:
                expected = "integers" if kind == "i" else "numbers"
                raise self.error(field, f"expected {expected}, found data of type {dtype}")
            with self.guard(field):
                value = np.asarray(ds[()])
            if kind == "i":
                value = value.astype(np.int64)
            elif value.dtype.kind in "bi" or value.dtype.kind == "u":
                value = value.astype(np.float64)
        if ndim is not None and value.ndim not in ndim:
            raise self.error(
                field, f"expected {' or '.join(map(str, ndim))} dimension(s), found {value.shape}"
            )
        if size is not None and value.size != size:
            raise self.error(field, f"expected {size} element(s), found shape {value.shape}")
        return value

    def number(self, field: str, *, integer: bool = False, default: float | None = None) -> float:
        """A scalar number; a 1-element array counts as a scalar."""
        if default is not None and not self.has(field):
            return default
        value = self.array(field, kind="i" if integer else "f")
        if value.size != 1:
            raise self.error(field, f"expected a single number, found shape {value.shape}")
        item = value.reshape(-1)[0]
        return int(item) if integer else float(item)

    def flag(self, field: str, default: bool = False) -> bool:
        """A boolean flag (MDF stores them as Int8); ``default`` when the field is absent."""
        if not self.has(field):
            return default
        return bool(self.number(field, integer=True))

    def string(self, field: str, default: str | None = None) -> str | None:
        """A string field, fixed- or variable-length, scalar or the first of an array."""
        if not self.has(field):
            return default
        ds = self.dataset(field)
        if ds.dtype.kind not in "SOU":
            raise self.error(field, f"expected a string, found data of type {ds.dtype}")
        with self.guard(field):
            value = ds[()]
        value = decode(value)
        while isinstance(value, list):
            if not value:
                return default
            value = value[0]
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, found {type(value).__name__}")
        return value.strip("\x00")

    def group_contents(self, group: str, max_elements: int = 4096) -> dict:
        """All small datasets below ``group`` as plain Python values (nested by subgroup)."""
        out: dict = {}
        if not self.has(group):
            return out
        with self.guard(group):
            obj = self.h5[group]
            if not isinstance(obj, h5py.Group):
                return out
            for name, item in obj.items():
                if isinstance(item, h5py.Group):
                    out[name] = self.group_contents(f"{group}/{name}", max_elements)
                elif item.shape is not None and int(np.prod(item.shape)) <= max_elements:
                    value = item[()]
                    if isinstance(value, np.ndarray) and value.dtype.names is not None:
                        value = (
                            compound_to_complex(value)
                            if is_complex_compound(value.dtype)
                            else value.tolist()
                        )
                    out[name] = decode(value)
        return out
