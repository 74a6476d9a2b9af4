"""The tables of MDF 2.1.0 (``../shared/reference/MDF_spec_2.1.0.tex``) and a checker.

Encoded by hand from the specification's tables, independently of the package's writer: for
every group, each parameter's type, dimensions and whether it is optional ("no" = mandatory,
"yes" = optional, or the name of the Int8 flag that makes it mandatory). Dimension letters are
the specification's (J periods, Y partitions, C receive channels, D drive channels, F drive
frequencies, N frames, O foreground frames, K frequencies, W time samples, V sampling points,
A tracers, Q reconstructed frames, P voxels, S reconstructed channels); "1" is a scalar.
"""

from __future__ import annotations

import math

import h5py
import numpy as np

# (type, dims, optional); types: String, Int64, Int8, Float64, Number, Complex128, Integer
ROOT = {
    "time": ("String", "1", "no"),
    "uuid": ("String", "1", "no"),
    "version": ("String", "1", "no"),
}
STUDY = {
    "description": ("String", "1", "no"),
    "name": ("String", "1", "no"),
    "number": ("Int64", "1", "no"),
    "time": ("String", "1", "yes"),
    "uuid": ("String", "1", "no"),
}
EXPERIMENT = {
    "description": ("String", "1", "no"),
    "isSimulation": ("Int8", "1", "no"),
    "name": ("String", "1", "no"),
    "number": ("Int64", "1", "no"),
    "subject": ("String", "1", "no"),
    "uuid": ("String", "1", "no"),
}
TRACER = {
    "batch": ("String", "A", "no"),
    "concentration": ("Float64", "A", "no"),
    "injectionTime": ("String", "A", "yes"),
    "name": ("String", "A", "no"),
    "solute": ("String", "A", "no"),
    "vendor": ("String", "A", "no"),
    "volume": ("Float64", "A", "no"),
}
SCANNER = {
    "boreSize": ("Float64", "1", "yes"),
    "facility": ("String", "1", "no"),
    "manufacturer": ("String", "1", "no"),
    "name": ("String", "1", "no"),
    "operator": ("String", "1", "no"),
    "topology": ("String", "1", "no"),
}
ACQUISITION = {
    "gradient": ("Float64", "JxYx3x3", "yes"),
    "numAverages": ("Int64", "1", "no"),
    "numFrames": ("Int64", "1", "no"),
    "numPeriodsPerFrame": ("Int64", "1", "no"),
    "offsetField": ("Float64", "JxYx3", "yes"),
    "startTime": ("String", "1", "no"),
}
DRIVEFIELD = {
    "baseFrequency": ("Float64", "1", "no"),
    "cycle": ("Float64", "1", "no"),
    "divider": ("Int64", "DxF", "no"),
    "numChannels": ("Int64", "1", "no"),
    "phase": ("Float64", "JxDxF", "no"),
    "strength": ("Float64", "JxDxF", "no"),
    "waveform": ("String", "DxF", "no"),
}
RECEIVER = {
    "bandwidth": ("Float64", "1", "no"),
    "dataConversionFactor": ("Float64", "Cx2", "yes"),
    "inductionFactor": ("Float64", "C", "yes"),
    "numChannels": ("Int64", "1", "no"),
    "numSamplingPoints": ("Int64", "1", "no"),
    "transferFunction": ("Complex128", "CxK", "yes"),
    "unit": ("String", "1", "no"),
}
MEASUREMENT = {
    "data": ("Number", "NxJxCxK|JxCxKxN|NxJxCxW|JxCxWxN", "no"),
    "framePermutation": ("Int64", "N", "isFramePermutation"),
    "frequencySelection": ("Int64", "K", "isFrequencySelection"),
    "isBackgroundCorrected": ("Int8", "1", "no"),
    "isBackgroundFrame": ("Int8", "N", "no"),
    "isFastFrameAxis": ("Int8", "1", "no"),
    "isFourierTransformed": ("Int8", "1", "no"),
    "isFramePermutation": ("Int8", "1", "no"),
    "isFrequencySelection": ("Int8", "1", "no"),
    "isSparsityTransformed": ("Int8", "1", "no"),
    "isSpectralLeakageCorrected": ("Int8", "1", "no"),
    "isTransferFunctionCorrected": ("Int8", "1", "no"),
    "sparsityTransformation": ("String", "1", "isSparsityTransformed"),
    "subsamplingIndices": ("Integer", "JxCxKxB", "isSparsityTransformed"),
}
CALIBRATION = {
    "deltaSampleSize": ("Float64", "3", "yes"),
    "fieldOfView": ("Float64", "3", "yes"),
    "fieldOfViewCenter": ("Float64", "3", "yes"),
    "method": ("String", "1", "no"),
    "offsetFields": ("Float64", "Ox3", "yes"),
    "order": ("String", "1", "yes"),
    "positions": ("Float64", "Ox3", "yes"),
    "size": ("Int64", "3", "yes"),
    "snr": ("Float64", "JxCxK", "yes"),
}
RECONSTRUCTION = {
    "data": ("Number", "QxPxS", "no"),
    "fieldOfView": ("Float64", "3", "yes"),
    "fieldOfViewCenter": ("Float64", "3", "yes"),
    "isOverscanRegion": ("Int8", "P", "yes"),
    "order": ("String", "1", "yes"),
    "positions": ("Float64", "Px3", "yes"),
    "size": ("Int64", "3", "yes"),
}
#: group -> (table, group mandatory?) ; "/tracer" is mandatory when tracer was used (our files
#: always write it), measurement/calibration/reconstruction by kind of file.
GROUPS = {
    "": (ROOT, True),
    "study": (STUDY, True),
    "experiment": (EXPERIMENT, True),
    "tracer": (TRACER, False),
    "scanner": (SCANNER, True),
    "acquisition": (ACQUISITION, True),
    "acquisition/drivefield": (DRIVEFIELD, True),
    "acquisition/receiver": (RECEIVER, True),
    "measurement": (MEASUREMENT, False),
    "calibration": (CALIBRATION, False),
    "reconstruction": (RECONSTRUCTION, False),
}

_NUMBER_KINDS = {np.dtype(t) for t in ("<f4", "<f8", "<i1", "<i2", "<i4", "<i8")}
_INTEGER_KINDS = {np.dtype(t) for t in ("<i1", "<i2", "<i4", "<i8")}


def _is_complex(dtype: np.dtype, base: set) -> bool:
    if dtype.kind == "c":  # h5py maps the r/i compound to numpy complex
        return np.dtype(f"<f{dtype.itemsize // 2}") in base
    names = dtype.names
    return names == ("r", "i") and all(dtype[n] in base for n in names)


def type_ok(dtype: np.dtype, kind: str) -> bool:
    """Whether an HDF5 dataset's element type is the specification's ``kind``."""
    dtype = np.dtype(dtype)
    if kind == "String":
        return h5py.check_string_dtype(dtype) is not None
    if kind == "Int64":
        return dtype == np.dtype("<i8")
    if kind == "Int8":
        return dtype == np.dtype("<i1")
    if kind == "Float64":
        return dtype == np.dtype("<f8")
    if kind == "Integer":
        return dtype in _INTEGER_KINDS
    if kind == "Complex128":
        return _is_complex(dtype, {np.dtype("<f8")})
    if kind == "Number":
        return dtype in _NUMBER_KINDS or _is_complex(dtype, _NUMBER_KINDS)
    raise ValueError(kind)


def _sizes(h5: h5py.File) -> dict:
    """Values of the dimension letters, derived from the file's own fields."""
    s: dict = {"1": (), "2": 2, "3": 3}

    def scalar(letter: str, name: str) -> None:
        if name in h5:
            s[letter] = int(np.asarray(h5[name][()]).reshape(-1)[0])

    scalar("J", "acquisition/numPeriodsPerFrame")
    scalar("N", "acquisition/numFrames")
    scalar("C", "acquisition/receiver/numChannels")
    scalar("D", "acquisition/drivefield/numChannels")
    scalar("V", "acquisition/receiver/numSamplingPoints")
    if "V" in s:
        s["W"] = s["V"]
    if "acquisition/drivefield/divider" in h5:
        s["F"] = h5["acquisition/drivefield/divider"].shape[-1]
    s["Y"] = 1  # partitions per period; read from a 4-D gradient when there is one
    if "acquisition/gradient" in h5 and h5["acquisition/gradient"].ndim == 4:
        s["Y"] = h5["acquisition/gradient"].shape[1]
    m = "measurement"
    if f"{m}/isFrequencySelection" in h5 and int(h5[f"{m}/isFrequencySelection"][()]):
        s["K"] = h5[f"{m}/frequencySelection"].shape[0]
    elif "V" in s:
        s["K"] = s["V"] // 2 + 1
    if f"{m}/isBackgroundFrame" in h5 and "N" in s:
        s["O"] = int(s["N"] - np.sum(h5[f"{m}/isBackgroundFrame"][()]))
    if "tracer/name" in h5:
        s["A"] = h5["tracer/name"].shape[0] if h5["tracer/name"].shape else 1
    if "reconstruction/data" in h5:
        s["Q"], s["P"], s["S"] = h5["reconstruction/data"].shape
    return s


def _expected_shapes(dims: str, sizes: dict) -> list[tuple]:
    out = []
    for option in dims.split("|"):
        if option == "1":
            out.append(())
            continue
        try:
            out.append(tuple(int(sizes[d]) for d in option.split("x")))
        except KeyError:
            continue
    return out


def violations(path, kind: str) -> list[str]:
    """Every way the file at ``path`` departs from MDF 2.1.0 for a file of ``kind``
    (``"calibration"``, ``"measurement"`` or ``"reconstruction"``); empty when conformant."""
    problems: list[str] = []
    with h5py.File(path, "r") as h5:
        sizes = _sizes(h5)
        for group, (table, mandatory) in GROUPS.items():
            needed = (
                mandatory
                or (group == "measurement" and kind in ("calibration", "measurement"))
                or (group == kind)
            )
            if group and group not in h5:
                if needed:
                    problems.append(f"group /{group} is missing")
                continue
            for name, (typ, dims, optional) in table.items():
                field = f"{group}/{name}" if group else name
                if optional == "yes":
                    required = False
                elif optional == "no":
                    required = True
                else:
                    flag = f"{group}/{optional}"
                    required = flag in h5 and bool(int(h5[flag][()]))
                if field not in h5:
                    if required:
                        problems.append(f"{field} is missing")
                    continue
                ds = h5[field]
                if not isinstance(ds, h5py.Dataset):
                    problems.append(f"{field} is not a dataset")
                    continue
                if not type_ok(ds.dtype, typ):
                    problems.append(f"{field}: type {ds.dtype}, the specification says {typ}")
                shapes = _expected_shapes(dims, sizes)
                if shapes and ds.shape not in shapes and not (dims == "1" and ds.shape == (1,)):
                    problems.append(
                        f"{field}: shape {ds.shape}, the specification says {dims} = "
                        f"{' or '.join(map(str, shapes))}"
                    )
        version = h5["version"][()]
        version = version.decode() if isinstance(version, bytes) else str(version)
        if version != "2.1.0":
            problems.append(f"version is {version!r}, expected '2.1.0'")
        if "calibration/size" in h5 and "O" in sizes:
            if math.prod(h5["calibration/size"][()].tolist()) != sizes["O"]:
                problems.append("calibration/size: product is not O (the foreground frames)")
    return problems
