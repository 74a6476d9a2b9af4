"""Writing the root, study, experiment, tracer and scanner groups with MDF 2.1.0's types.

Values given by the caller (for instance the groups read from another MDF file, which
:meth:`MDFFile.system_matrix` keeps in ``SystemMatrix.metadata["mdf_groups"]``) are written back
unchanged, converted only to the type the specification gives the field (``isSimulation`` is
Int8, ``number`` Int64, tracer fields arrays of length A, ...). Missing non-optional fields get
neutral defaults (``"n.a."``).
"""

from __future__ import annotations

import datetime as _dt
import uuid

import h5py
import numpy as np

MDF_VERSION = "2.1.0"
STR = h5py.string_dtype("utf-8")

#: MDF 2.1.0 types of the metadata fields: "s" String, "i" Int64, "b" Int8, "f" Float64;
#: a trailing "A" marks a field with one value per tracer.
FIELD_TYPES = {
    "study": {"description": "s", "name": "s", "number": "i", "time": "s", "uuid": "s"},
    "experiment": {
        "description": "s",
        "isSimulation": "b",
        "name": "s",
        "number": "i",
        "subject": "s",
        "uuid": "s",
    },
    "tracer": {
        "batch": "sA",
        "concentration": "fA",
        "injectionTime": "sA",
        "name": "sA",
        "solute": "sA",
        "vendor": "sA",
        "volume": "fA",
    },
    "scanner": {
        "boreSize": "f",
        "facility": "s",
        "manufacturer": "s",
        "name": "s",
        "operator": "s",
        "topology": "s",
    },
}


def now() -> str:
    """UTC time as MDF writes it (``yyyy-mm-ddThh:mm:ss.ms``)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def put(h5: h5py.File, name: str, value: object) -> None:
    """Write one field with MDF's types: str -> UTF-8 string, bool -> Int8, int -> Int64,
    float -> Float64; numpy scalars keep their type (``np.int8`` for a flag)."""
    if isinstance(value, str):
        h5.create_dataset(name, data=value, dtype=STR)
    elif isinstance(value, bool | np.bool_):
        h5.create_dataset(name, data=np.int8(value))
    elif isinstance(value, np.integer | np.floating):  # a numpy scalar keeps its type
        h5.create_dataset(name, data=value)
    elif isinstance(value, int):
        h5.create_dataset(name, data=np.int64(value))
    elif isinstance(value, float):
        h5.create_dataset(name, data=np.float64(value))
    else:
        arr = np.asarray(value)
        if arr.dtype == bool:
            arr = arr.astype(np.int8)
        elif arr.dtype.kind in "US" or arr.dtype == object:
            h5.create_dataset(name, data=arr.astype(str).astype(object), dtype=STR)
            return
        h5.create_dataset(name, data=arr)


def _typed(value: object, code: str, count: int | None) -> object:
    """``value`` converted to the spec type ``code`` (see :data:`FIELD_TYPES`)."""
    base, per_tracer = code[0], code.endswith("A")
    if per_tracer:
        arr = np.atleast_1d(np.asarray(value, dtype=object)).ravel()
        if count is not None and arr.size == 1 and count > 1:
            arr = np.repeat(arr, count)
        if base == "s":
            return np.array([_text(v) for v in arr], dtype=object)
        return np.array([float(v) for v in arr], dtype=np.float64)
    if isinstance(value, list | tuple | np.ndarray):
        flat = np.asarray(value, dtype=object).ravel()
        value = flat[0] if flat.size else ""
    if base == "s":
        return _text(value)
    if base == "b":
        return np.int8(bool(value))
    if base == "i":
        return np.int64(value)
    return np.float64(value)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def write_metadata(h5: h5py.File, metadata: dict | None, *, is_simulation: bool) -> None:
    """Root fields and the study, experiment, tracer and scanner groups (MDF 2.1.0).

    Parameters
    ----------
    metadata : dict, optional
        ``{"study": {...}, "experiment": {...}, "tracer": {...}, "scanner": {...}}``; other keys
        are ignored here. Fields not in the specification are written as given.
    is_simulation : bool
        ``experiment/isSimulation`` unless ``metadata["experiment"]`` gives it.
    """
    meta = metadata or {}
    put(h5, "version", MDF_VERSION)
    put(h5, "uuid", str(uuid.uuid4()))
    put(h5, "time", now())
    defaults = {
        "study": {
            "name": "napari-mpi",
            "number": 1,
            "uuid": str(uuid.uuid4()),
            "description": "n.a.",
        },
        "experiment": {
            "name": "napari-mpi",
            "number": 1,
            "uuid": str(uuid.uuid4()),
            "description": "n.a.",
            "subject": "n.a.",
            "isSimulation": is_simulation,
        },
        "tracer": {
            "name": ["n.a."],
            "batch": ["n.a."],
            "vendor": ["n.a."],
            "volume": [0.0],
            "concentration": [0.0],
            "solute": ["Fe"],
        },
        "scanner": {
            "facility": "n.a.",
            "operator": "n.a.",
            "manufacturer": "n.a.",
            "name": "napari-mpi",
            "topology": "FFP",
        },
    }
    for group, values in defaults.items():
        given = meta.get(group) or {}
        merged = {**values, **{k: v for k, v in given.items() if not isinstance(v, dict)}}
        types = FIELD_TYPES[group]
        count = None
        if group == "tracer":
            count = max(np.atleast_1d(np.asarray(merged.get("name", ["n.a."]), object)).size, 1)
        for key, value in merged.items():
            if value is None:
                continue
            code = types.get(key)
            put(h5, f"{group}/{key}", value if code is None else _typed(value, code, count))
