"""Write MDF files of every layout with h5py directly, independently of the package's writer.

Each call returns the file path and the values a correct reader must produce, so the tests
check values, not only shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from napari_mpi import read_mdf

BASE_FREQUENCY = 2.5e6
DIVIDERS = np.array([102, 96])
CYCLE = 1632 / BASE_FREQUENCY
#: The selection-field gradient of every factory file (T/m/mu0), a 3 x 3 matrix.
GRADIENT = np.diag([-1.0, -1.0, 2.0])


@dataclass
class Layout:
    """How to store the data; the defaults give a plain MDF 2.1 calibration."""

    version: str = "2.1.0"
    kind: str = "calibration"  # or "measurement"
    frames: int = 12  # foreground frames (voxels of a calibration)
    background: int = 0  # background frames
    periods: int = 1
    channels: int = 2
    samples: int = 32  # V
    fourier: bool = True
    fast: bool = False
    complex_mode: str = "native"  # "native" (r/i compound), "trailing", "realimag"
    selection: np.ndarray | None = None  # 0-based rfft bins stored
    permutation: np.ndarray | None = None  # acquisition index of each stored frame
    conversion: np.ndarray | None = None  # (C, 2)
    with_snr: bool = False
    transfer_function: bool = False
    background_corrected: bool = False
    strings: str = "vlen"  # or "fixed"
    grid_xyz: tuple[int, int, int] = (4, 3, 1)
    fov_xyz: tuple[float, float, float] = (0.02, 0.015, 0.001)
    center_xyz: tuple[float, float, float] = (0.001, -0.002, 0.003)
    order: str = "xyz"
    background_first: bool = False
    seed: int = 0
    gradient: str = "spec"  # v2.1: "spec" (J x Y x 3 x 3) or "legacy" (J x 1 x 3)
    extra: dict = field(default_factory=dict)


@dataclass
class Truth:
    """What a correct reader returns for a file written by :func:`write_mdf_file`."""

    path: Path
    spectra: np.ndarray  # (N_stored, J, C, L) complex128, after conversion, before TF correction
    is_background: np.ndarray  # (N_stored,)
    frequencies: np.ndarray  # (L,) Hz
    bins: np.ndarray  # stored bins
    snr: np.ndarray | None
    tf: np.ndarray | None  # (C, L)
    acquisition_order: np.ndarray  # stored index of each acquired frame
    layout: Layout


def _string(h5: h5py.File, name: str, value, mode: str) -> None:
    if mode == "fixed":
        h5.create_dataset(name, data=np.bytes_(value))
    else:
        h5.create_dataset(name, data=value, dtype=h5py.string_dtype())


def _complex(h5: h5py.File, name: str, arr: np.ndarray, mode: str) -> None:
    arr = arr.astype(np.complex64)
    if mode == "native":
        h5.create_dataset(name, data=arr)
    elif mode == "trailing":
        h5.create_dataset(name, data=np.stack([arr.real, arr.imag], axis=-1))
    elif mode == "realimag":
        dt = np.dtype([("real", "<f4"), ("imag", "<f4")])
        out = np.empty(arr.shape, dtype=dt)
        out["real"], out["imag"] = arr.real, arr.imag
        h5.create_dataset(name, data=out)
    else:
        raise ValueError(mode)


def write_mdf_file(path: Path, lay: Layout) -> Truth:
    """Write one MDF file with the given layout and return the expected values."""
    rng = np.random.default_rng(lay.seed)
    n = lay.frames + lay.background
    j, c, v = lay.periods, lay.channels, lay.samples
    num_freq = v // 2 + 1
    raw = rng.normal(size=(n, j, c, v)).astype(np.float32)
    if lay.fourier:
        raw = raw.astype(np.float64)
    if lay.conversion is not None:
        a, b = lay.conversion[:, 0], lay.conversion[:, 1]
        physical = raw.astype(np.float64) * a[None, None, :, None] + b[None, None, :, None]
    else:
        physical = raw.astype(np.float64)
    spectra = np.fft.rfft(physical, axis=-1)
    if lay.fourier:
        # frequency data are stored as complex64: make the truth exactly representable
        spectra = spectra.astype(np.complex64).astype(np.complex128)
    is_bg = np.zeros(n, dtype=bool)
    if lay.background_first:
        is_bg[: lay.background] = True
    else:
        is_bg[lay.frames :] = True
    bins = np.arange(num_freq) if lay.selection is None else np.asarray(lay.selection)
    perm = np.arange(n) if lay.permutation is None else np.asarray(lay.permutation)
    tf = None
    if lay.transfer_function:
        tf = (1 + rng.random((c, num_freq))) * np.exp(1j * rng.random((c, num_freq)))
        tf = tf.astype(np.complex64).astype(np.complex128)
    snr = rng.random((j, c, bins.size)) * 20 if lay.with_snr else None
    bandwidth = v / (2 * CYCLE)
    v1 = lay.version.startswith("1")
    with h5py.File(path, "w") as h5:
        s = lay.strings
        _string(h5, "version", lay.version, s)
        _string(h5, "uuid", "ee94cb6d-febf-47d9-bec9-e3afa59bfaf8", s)
        _string(h5, "date" if v1 else "time", "2026-01-01T00:00:00.000", s)
        _string(h5, "study/name", "factory study", s)
        _string(h5, "scanner/topology", "FFP", s)
        _string(h5, "scanner/name" if not v1 else "scanner/model", "factory scanner", s)
        _string(h5, "tracer/name", "perimag", s)
        h5["experiment/isSimulation" if not v1 else "study/simulation"] = np.int8(1)
        df = "acquisition/drivefield"
        h5[f"{df}/baseFrequency"] = BASE_FREQUENCY
        if v1:
            h5[f"{df}/divider"] = DIVIDERS
            h5[f"{df}/strength"] = np.array([0.012, 0.012])
            h5[f"{df}/averages"] = np.int64(1)
            h5["acquisition/gradient"] = np.array([-1.0, -1.0, 2.0])
            h5["acquisition/numFrames"] = np.int64(n)
        else:
            h5[f"{df}/divider"] = DIVIDERS.reshape(2, 1)
            h5[f"{df}/strength"] = np.full((j, 2, 1), 0.012)
            h5[f"{df}/phase"] = np.zeros((j, 2, 1))
            h5[f"{df}/numChannels"] = np.int64(2)
            wf = (
                np.array([[b"sine"], [b"sine"]])
                if s == "fixed"
                else np.array([["sine"], ["sine"]], dtype=object)
            )
            h5.create_dataset(
                f"{df}/waveform", data=wf, dtype=None if s == "fixed" else h5py.string_dtype()
            )
            h5["acquisition/numAverages"] = np.int64(1)
            h5["acquisition/numFrames"] = np.int64(n)
            if lay.version.startswith("2.0"):
                h5["acquisition/numPeriods"] = np.int64(j)
                h5["acquisition/gradient"] = np.array([[-1.0, -1.0, 2.0]])
                h5[f"{df}/period"] = CYCLE
            else:
                h5["acquisition/numPeriodsPerFrame"] = np.int64(j)
                if lay.gradient == "spec":  # MDF 2.1: J x Y x 3 x 3
                    h5["acquisition/gradient"] = np.tile(GRADIENT, (j, 1, 1, 1))
                else:
                    h5["acquisition/gradient"] = np.tile(np.diag(GRADIENT), (j, 1, 1))
                h5[f"{df}/cycle"] = CYCLE
        rx = "acquisition/receiver"
        h5[f"{rx}/numChannels"] = np.int64(c)
        h5[f"{rx}/bandwidth"] = bandwidth
        h5[f"{rx}/numSamplingPoints"] = np.int64(v)
        if lay.conversion is not None:
            h5[f"{rx}/dataConversionFactor"] = lay.conversion
        if tf is not None:
            _complex(h5, f"{rx}/transferFunction", tf, "native")
        grid_group = "calibration"
        if v1:
            assert j == 1
            if lay.kind == "calibration":
                stored = spectra[:, 0][:, :, bins]  # (N, C, K)
                arr = np.transpose(stored, (1, 2, 0))  # (C, K, N)
                h5["calibration/dataFD"] = np.stack([arr.real, arr.imag], axis=-1).astype(
                    np.float32
                )
                if snr is not None:
                    h5["calibration/snrFD"] = snr[0]
            elif lay.fourier:
                stored = spectra[:, 0][:, :, bins]
                h5["measurement/dataFD"] = np.stack([stored.real, stored.imag], -1).astype(
                    np.float32
                )
            else:
                h5["measurement/dataTD"] = raw[:, 0]
        else:
            m = "measurement"
            if lay.fourier:
                stored = spectra[..., bins]  # (N, J, C, K)
            else:
                stored = raw
            if lay.fast:
                stored = np.transpose(stored, (1, 2, 3, 0))
            if lay.fourier:
                _complex(h5, f"{m}/data", stored, lay.complex_mode)
            else:
                h5[f"{m}/data"] = stored
            h5[f"{m}/isFourierTransformed"] = np.int8(lay.fourier)
            if lay.version.startswith("2.0"):
                h5[f"{m}/isTransposed"] = np.int8(lay.fast)
            else:
                h5[f"{m}/isFastFrameAxis"] = np.int8(lay.fast)
            h5[f"{m}/isBackgroundCorrected"] = np.int8(lay.background_corrected)
            h5[f"{m}/isTransferFunctionCorrected"] = np.int8(0)
            h5[f"{m}/isSpectralLeakageCorrected"] = np.int8(0)
            h5[f"{m}/isBackgroundFrame"] = is_bg.astype(np.int8)
            h5[f"{m}/isFrequencySelection"] = np.int8(lay.selection is not None)
            if lay.selection is not None:
                h5[f"{m}/frequencySelection"] = bins + 1
            h5[f"{m}/isFramePermutation"] = np.int8(lay.permutation is not None)
            if lay.permutation is not None:
                h5[f"{m}/framePermutation"] = perm + 1
            if lay.kind == "calibration" and snr is not None:
                h5["calibration/snr"] = snr
        if lay.kind == "calibration":
            h5[f"{grid_group}/size"] = np.array(lay.grid_xyz)
            h5[f"{grid_group}/fieldOfView"] = np.array(lay.fov_xyz)
            h5[f"{grid_group}/fieldOfViewCenter"] = np.array(lay.center_xyz)
            if not v1:
                _string(h5, f"{grid_group}/order", lay.order, s)
                _string(h5, f"{grid_group}/method", "robot", s)
        for key, value in lay.extra.items():
            h5[key] = value
    return Truth(
        path=Path(path),
        spectra=spectra,
        is_background=is_bg,
        frequencies=np.arange(num_freq) / CYCLE,
        bins=bins,
        snr=snr,
        tf=tf,
        acquisition_order=np.argsort(perm),
        layout=lay,
    )


def expected_system_matrix(truth: Truth, background_correction: bool = True) -> np.ndarray:
    """The (rows, voxels) matrix a reader must return with default settings, voxels in C order
    over (z, y, x) and rows ordered period, channel, frequency."""
    lay = truth.layout
    fg = truth.spectra[~truth.is_background]  # (Nfg, J, C, L)
    if background_correction and truth.is_background.any() and not lay.background_corrected:
        fg = fg - truth.spectra[truth.is_background].mean(axis=0, keepdims=True)
    fg = fg[..., truth.bins]  # (Nfg, J, C, K)
    matrix = fg.reshape(fg.shape[0], -1).T  # rows (J, C, K) x stored voxel index
    # stored voxel order follows `order` (first letter fastest); reorder to (z, y, x) C order
    sizes = dict(zip("xyz", lay.grid_xyz, strict=True))
    slow_to_fast = lay.order[::-1]
    idx = np.arange(fg.shape[0]).reshape([sizes[a] for a in slow_to_fast])
    perm = idx.transpose([slow_to_fast.index(a) for a in "zyx"]).reshape(-1)
    return matrix[:, perm]


def full_read(path):
    """Everything a user can ask of a file with default settings."""
    with read_mdf(path) as f:
        f.summary()
        _ = f.metadata
        if f.kind == "calibration":
            f.system_matrix()
        elif f.kind == "measurement":
            f.spectra()
        elif f.kind == "reconstruction":
            f.image()
