"""Typed access to the fields of an open MDF file, turning every failure into an MDFError.

Fields are looked up link by link: soft links are followed (at most :data:`MAX_LINK_HOPS`
hops, so a loop is reported, not followed forever), external links are never followed (they
would open other files), hard-link cycles in groups are detected. Before a field is read, its
declared size is checked against the file (an uncompressed dataset cannot be larger than the
file) and against :func:`~napari_mpi.io.limits.memory_limit`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from ._h5 import compound_to_complex, decode, is_complex_compound
from ._heap import collection_problem, heap_addresses
from .errors import MDFError
from .limits import format_bytes, over_limit

#: Exceptions h5py and numpy raise on broken files; the guard turns them into MDFError.
H5_FAILURES = (
    OSError,
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    RuntimeError,
    AttributeError,
    OverflowError,
    MemoryError,
    UnicodeError,
    NotImplementedError,
)
#: Soft links followed for one field before the lookup is refused as a loop.
MAX_LINK_HOPS = 16
#: Deepest group nesting that :meth:`FieldReader.group_contents` descends into.
MAX_GROUP_DEPTH = 8
#: A field read whole (not the data array) may declare at most this many bytes, or
#: :data:`FIELD_FILE_RATIO` times the file size if that is more.
FIELD_MIN_BYTES = 64 * 2**20
FIELD_FILE_RATIO = 64
#: String fields hold one string or a small array (D x F waveforms).
MAX_STRING_ELEMENTS = 4096


def declared_nbytes(ds: h5py.Dataset) -> int:
    """Bytes the dataset's shape and element type declare (exact, no overflow)."""
    shape = ds.shape
    if shape is None:
        return 0
    return math.prod(int(n) for n in shape) * int(ds.dtype.itemsize)


def is_contiguous(ds: h5py.Dataset) -> bool:
    """True for contiguous (unchunked, hence uncompressed) storage."""
    return ds.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS


class FieldReader:
    """Reads named fields of an open HDF5 file with type and shape checks.

    Every method raises :class:`MDFError` naming the file and field on a missing, mistyped or
    mis-shaped field, or when HDF5 cannot read it (a truncated file, for example).
    """

    def __init__(self, handle: h5py.File, path: Path, file_size: int | None = None) -> None:
        self.h5 = handle
        self.path = path
        self.file_size = file_size
        self._found: dict[str, h5py.HLObject | None] = {}  # the file is open read-only
        self._groups: dict[str, h5py.Group] = {}  # groups reached through hard links only
        self._heaps_ok: set[int] = set()

    @contextlib.contextmanager
    def guard(self, field: str | None) -> Iterator[None]:
        """Re-raise low-level failures inside the block as MDFError for ``field``."""
        try:
            yield
        except MDFError:
            raise
        except MemoryError as exc:
            raise MDFError(
                self.path, field, f"could not be read: not enough memory ({exc or 'MemoryError'})"
            ) from exc
        except H5_FAILURES as exc:
            text = str(exc).split("\n")[0][:300]
            raise MDFError(
                self.path, field, f"could not be read ({type(exc).__name__}: {text})"
            ) from exc

    def error(self, field: str | None, message: str) -> MDFError:
        return MDFError(self.path, field, message)

    def lookup(self, field: str) -> h5py.HLObject | None:
        """The object at ``field``, following soft links safely; None when it does not exist.

        Raises
        ------
        MDFError
            For an external link, a soft-link loop, or when HDF5 fails on the way.
        """
        if field in self._found:
            return self._found[field]
        obj = self._walk(field)
        self._found[field] = obj
        return obj

    def _walk(self, field: str) -> h5py.HLObject | None:
        parts = [p for p in field.split("/") if p and p != "."]
        with self.guard(field):
            obj: h5py.HLObject = self.h5["/"]
            plain: str | None = ""
            # start from the longest prefix already resolved through hard links only
            for cut in range(len(parts) - 1, 0, -1):
                prefix = "/".join(parts[:cut])
                if prefix in self._groups:
                    obj, parts, plain = self._groups[prefix], parts[cut:], prefix
                    break
            hops = 0
            while parts:
                if not isinstance(obj, h5py.Group):
                    return None
                name = parts.pop(0)
                if name == ".":
                    continue
                link = obj.get(name, getlink=True)
                if link is None:
                    return None
                if isinstance(link, h5py.HardLink):
                    obj = obj[name]
                    if plain is not None and isinstance(obj, h5py.Group):
                        plain = f"{plain}/{name}" if plain else name
                        self._groups[plain] = obj
                elif isinstance(link, h5py.SoftLink):
                    plain = None  # the path no longer names what was walked
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        raise self.error(
                            field,
                            f"soft links loop (more than {MAX_LINK_HOPS} hops, last to "
                            f"'{link.path}')",
                        )
                    target = str(link.path)
                    if target.startswith("/"):
                        obj = self.h5["/"]
                    parts = [p for p in target.split("/") if p] + parts
                elif isinstance(link, h5py.ExternalLink):
                    raise self.error(
                        field,
                        f"is an external link (to '{link.path}' in '{link.filename}'); external "
                        "links are not followed",
                    )
                else:
                    raise self.error(field, f"is a link of unsupported type {type(link).__name__}")
        return obj

    def has(self, field: str) -> bool:
        """Whether ``field`` exists (a broken soft link counts as missing)."""
        return self.lookup(field) is not None

    def dataset(self, field: str) -> h5py.Dataset:
        """The dataset at ``field``; MDFError when it is missing or is a group."""
        obj = self.lookup(field)
        if obj is None:
            raise self.error(field, "is missing")
        if not isinstance(obj, h5py.Dataset):
            raise self.error(field, f"expected a dataset, found {type(obj).__name__}")
        with self.guard(field):
            shape = obj.shape
            dtype = obj.dtype
        if shape is None:
            raise self.error(field, "is empty (an HDF5 null dataspace), expected a value")
        if dtype.kind == "V" and dtype.names is None:
            raise self.error(field, f"has an unsupported element type ({dtype})")
        return obj

    def check_size(self, ds: h5py.Dataset, field: str, *, whole_field: bool = True) -> int:
        """Check a dataset's declared size against the file (and the memory limit).

        Parameters
        ----------
        whole_field : bool
            The field is to be read whole: also bounded by the memory limit and by
            :data:`FIELD_MIN_BYTES` or :data:`FIELD_FILE_RATIO` times the file size. False for a
            data array read in parts (only its declared size is checked against the file).

        Returns
        -------
        int
            The declared size in bytes.
        """
        with self.guard(field):
            nbytes = declared_nbytes(ds)
            contiguous = is_contiguous(ds)
            vlen = h5py.check_vlen_dtype(ds.dtype) is not None or ds.dtype.kind == "O"
        size = self.file_size
        if size is not None and contiguous and not vlen and nbytes > size:
            raise self.error(
                field,
                f"declares shape {ds.shape} of {ds.dtype} ({format_bytes(nbytes)}) but the file "
                f"is only {format_bytes(size)}: it is corrupt or truncated",
            )
        if whole_field and size is not None:
            cap = max(FIELD_MIN_BYTES, FIELD_FILE_RATIO * size)
            if nbytes > cap:
                raise self.error(
                    field,
                    f"declares shape {ds.shape} ({format_bytes(nbytes)}), implausibly large for "
                    f"a field of a {format_bytes(size)} file",
                )
        if whole_field:
            self.check_memory(nbytes, field, f"reading '{field}' (shape {ds.shape})", "read less")
        return nbytes

    def check_heap(self, ds: h5py.Dataset, field: str) -> None:
        """Before HDF5 reads variable-length strings: refuse a corrupt global heap collection
        that would make it loop forever (see :mod:`._heap`)."""
        if h5py.check_vlen_dtype(ds.dtype) is None and ds.dtype.kind != "O":
            return
        if self.file_size is None:
            return
        with self.guard(field):
            sizeof_addr, sizeof_size = self.h5.id.get_create_plist().get_sizes()
            fd = os.open(self.path, os.O_RDONLY)
            try:
                addresses = heap_addresses(ds, fd, sizeof_addr) or set()
                for address in sorted(addresses - self._heaps_ok):
                    problem = collection_problem(fd, address, self.file_size, sizeof_size)
                    if problem:
                        raise self.error(field, f"cannot be read: its {problem}")
                    self._heaps_ok.add(address)
            finally:
                os.close(fd)

    def check_memory(self, nbytes: float, field: str | None, what: str, how: str) -> None:
        """MDFError (naming the size and ``how`` to select less) above the memory limit."""
        message = over_limit(nbytes, what, how)
        if message:
            raise self.error(field, message)

    def raw(self, field: str) -> np.ndarray:
        """The whole dataset as an array (for small fields)."""
        ds = self.dataset(field)
        self.check_size(ds, field)
        self.check_heap(ds, field)
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
        if kind != "c" and dtype.names is None:
            # shape checks before anything is read
            if ndim is not None and len(ds.shape) not in ndim:
                raise self.error(
                    field,
                    f"expected {' or '.join(map(str, ndim))} dimension(s), found {ds.shape}",
                )
            if size is not None and math.prod(ds.shape) != size:
                raise self.error(field, f"expected {size} element(s), found shape {ds.shape}")
        self.check_size(ds, field)
        if kind == "c" and dtype.kind not in "iufc" and not is_complex_compound(dtype):
            raise self.error(field, f"expected complex numbers, found data of type {dtype}")
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
        if ds.dtype.kind not in "SOU" or (
            ds.dtype.kind == "O" and h5py.check_string_dtype(ds.dtype) is None
        ):
            raise self.error(field, f"expected a string, found data of type {ds.dtype}")
        if math.prod(ds.shape) > MAX_STRING_ELEMENTS:
            raise self.error(
                field, f"expected a string or a small array of strings, found shape {ds.shape}"
            )
        self.check_size(ds, field)
        self.check_heap(ds, field)
        with self.guard(field):
            value = decode(ds[()])
        while isinstance(value, list):
            if not value:
                return default
            value = value[0]
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, found {type(value).__name__}")
        return value.strip("\x00")

    def group_contents(self, group: str, max_elements: int = 4096) -> dict:
        """All small datasets below ``group`` as plain Python values (nested by subgroup).

        Broken and external links, committed datatypes, empty (null) datasets and fields of more
        than ``max_elements`` elements are left out; a group reached again through a hard link
        (a cycle) is not entered twice.
        """
        root = self.lookup(group)
        if not isinstance(root, h5py.Group):
            return {}
        return self._contents(root, group, max_elements, seen=set(), depth=0)

    def _contents(self, obj: h5py.Group, path: str, max_elements: int, seen: set, depth: int):
        out: dict = {}
        with self.guard(path):
            key = obj.id
            if key in seen or depth > MAX_GROUP_DEPTH:
                return out
            seen.add(key)
            names = list(obj.keys())
        for name in names[:max_elements]:
            field = f"{path}/{name}"
            with self.guard(field):
                link = obj.get(name, getlink=True)
                if isinstance(link, h5py.HardLink):
                    item = obj.get(name)
                elif isinstance(link, h5py.SoftLink):
                    try:
                        item = self.lookup(field)
                    except MDFError:
                        item = None
                else:
                    item = None  # external or user-defined link: not followed
                if isinstance(item, h5py.Group):
                    out[name] = self._contents(item, field, max_elements, seen, depth + 1)
                    continue
                if not isinstance(item, h5py.Dataset) or item.shape is None:
                    continue
                opaque = item.dtype.kind == "V" and item.dtype.names is None
                if opaque or math.prod(item.shape) > max_elements:
                    continue
                self.check_size(item, field)
                self.check_heap(item, field)
                value = item[()]
                if isinstance(value, np.ndarray) and value.dtype.names is not None:
                    value = (
                        compound_to_complex(value)
                        if is_complex_compound(value.dtype)
                        else value.tolist()
                    )
                out[name] = decode(value)
        return out
