"""A check of HDF5 global heap collections before HDF5 reads variable-length strings from them.

Variable-length strings live in global heap collections ("GCOL"). HDF5 (2.0.0 and earlier)
walks a collection object by object and advances by each object's declared size; a corrupted
free-space object of size 0 makes that walk stand still, and ``H5Dread`` never returns (a
zeroed block or a flipped byte inside the collection is enough). This module walks the
collection the same way in Python, on the raw bytes, and reports a collection HDF5 would
loop on, so that the reader raises an MDFError instead of hanging.

Only variable-length strings of contiguous datasets can be checked (their heap IDs are read
from the file directly); chunked and compact ones are left to HDF5.
"""

from __future__ import annotations

import os
import struct

import h5py

_SIGNATURE = b"GCOL"


def _pread(fd: int, size: int, offset: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = os.pread(fd, size - len(out), offset + len(out))
        if not chunk:
            break
        out += chunk
    return out


def heap_addresses(ds: h5py.Dataset, fd: int, sizeof_addr: int) -> set[int] | None:
    """Addresses of the collections a contiguous variable-length string dataset points to.

    None when the dataset is not stored contiguously (nothing to check from here).
    """
    offset = ds.id.get_offset()
    if offset is None:
        return None
    count = 1
    for n in ds.shape or ():
        count *= int(n)
    item = 4 + sizeof_addr + 4  # sequence length, collection address, object index
    raw = _pread(fd, item * count, offset)
    fmt = "<I" + ("Q" if sizeof_addr == 8 else "I") + "I"
    out = set()
    for i in range(len(raw) // item):
        length, address, _ = struct.unpack_from(fmt, raw, i * item)
        if length:
            out.add(int(address))
    return out


def collection_problem(fd: int, address: int, file_size: int, sizeof_size: int) -> str | None:
    """Why HDF5 would fail or loop on the collection at ``address``; None when it is sound."""
    header = 8 + sizeof_size
    if address + header > file_size:
        return f"points to a global heap at byte {address}, beyond the end of the file"
    head = _pread(fd, header, address)
    if head[:4] != _SIGNATURE:
        return f"points to byte {address}, which holds no global heap collection"
    size = int.from_bytes(head[8:header], "little")
    if size < header or address + size > file_size:
        return f"global heap at byte {address} declares {size} bytes, past the end of the file"
    chunk = _pread(fd, size, address)
    obj_header = 8 + sizeof_size
    p = header
    while p < size:
        if p + obj_header > size:
            break  # a tail too small for an object header is free space
        index = int.from_bytes(chunk[p : p + 2], "little")
        length = int.from_bytes(chunk[p + 8 : p + obj_header], "little")
        need = obj_header + ((length + 7) // 8) * 8 if index else length
        if need <= 0:
            return (
                f"global heap at byte {address} is corrupt (a free-space object of size 0 at "
                f"byte {address + p}; HDF5 would loop forever reading it)"
            )
        p += need
    return None
