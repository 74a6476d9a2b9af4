"""Writing MDF 2.1 files: calibrations, measurements and reconstructions.

Files are written to a temporary name in the target folder and renamed into place at the end,
so a failure never leaves a half-written file under the requested name, and an existing file is
only replaced when the caller passes ``overwrite=True``.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from .._version import __version__
from ..acquisition import Acquisition
from ..image import MPIImage
from ..system_matrix import SystemMatrix
from ._acquisition import write_acquisition
from ._grid import write_grid
from ._metadata import MDF_VERSION, put, write_metadata
from ._safe_write import safe_h5

__all__ = [
    "MDF_VERSION",
    "write_calibration",
    "write_mdf",
    "write_measurement",
    "write_reconstruction",
]


def _write_common(
    h5: h5py.File,
    metadata: dict | None,
    acquisition: Acquisition | None,
    num_frames: int,
    *,
    is_simulation: bool = True,
) -> None:
    """Root, study, experiment, tracer, scanner and acquisition groups (MDF 2.1.0)."""
    meta = metadata or {}
    write_metadata(h5, meta, is_simulation=is_simulation)
    put(h5, "_napari_mpi/version", __version__)
    start = (meta.get("acquisition") or {}).get("startTime")
    write_acquisition(h5, acquisition, num_frames, start if isinstance(start, str) else None)


def _write_measurement_group(
    h5: h5py.File,
    data: np.ndarray,
    *,
    fast_frame_axis: bool,
    fourier: bool,
    frequency_selection: np.ndarray | None,
    is_background_frame: np.ndarray,
    background_corrected: bool,
    transfer_function_corrected: bool = False,
    frame_permutation: np.ndarray | None = None,
) -> None:
    """``/measurement``: data given as (N, J, C, K) complex (or (N, J, C, V) real for time data)."""
    m = "measurement"
    stored = np.transpose(data, (1, 2, 3, 0)) if fast_frame_axis else data
    h5.create_dataset(f"{m}/data", data=np.ascontiguousarray(stored))
    put(h5, f"{m}/isFourierTransformed", bool(fourier))
    put(h5, f"{m}/isFastFrameAxis", bool(fast_frame_axis))
    put(h5, f"{m}/isBackgroundCorrected", bool(background_corrected))
    put(h5, f"{m}/isTransferFunctionCorrected", bool(transfer_function_corrected))
    put(h5, f"{m}/isSpectralLeakageCorrected", False)
    put(h5, f"{m}/isSparsityTransformed", False)
    put(h5, f"{m}/isBackgroundFrame", np.asarray(is_background_frame, dtype=bool))
    put(h5, f"{m}/isFrequencySelection", frequency_selection is not None)
    if frequency_selection is not None:
        put(h5, f"{m}/frequencySelection", np.asarray(frequency_selection, dtype=np.int64) + 1)
    put(h5, f"{m}/isFramePermutation", frame_permutation is not None)
    if frame_permutation is not None:
        put(h5, f"{m}/framePermutation", np.asarray(frame_permutation, dtype=np.int64) + 1)


def merge_metadata(base: dict | None, given: dict | None) -> dict:
    """Group-wise merge: the fields of ``given`` replace those of ``base``."""
    out: dict = {}
    for source in (base or {}, given or {}):
        for group, values in source.items():
            if isinstance(values, dict):
                out[group] = {**out.get(group, {}), **values}
    return out


def write_calibration(
    path: str | PathLike,
    system_matrix: SystemMatrix,
    *,
    overwrite: bool = False,
    metadata: dict | None = None,
    method: str | None = None,
    delta_sample_size: np.ndarray | None = None,
) -> Path:
    """Write a system matrix as an MDF 2.1 calibration file.

    The data are stored frequency-domain, frame axis fast (J x C x K x N, complex64 as the r/i
    compound), foreground frames in grid order (x fastest) followed by the background frames of
    ``system_matrix.background``. Frequencies are stored with a frequency selection unless the
    matrix holds every rfft bin.

    Parameters
    ----------
    path : str or PathLike
        Target file.
    system_matrix : SystemMatrix
        Must carry its :class:`~napari_mpi.Acquisition` and have the same frequencies in every
        (period, channel) it uses.
    overwrite : bool
        Replace an existing file.
    metadata : dict, optional
        Values for the ``study``, ``experiment``, ``tracer`` and ``scanner`` groups (and
        ``{"acquisition": {"startTime": ...}}``), merged over those the matrix was read with
        (``system_matrix.metadata["mdf_groups"]``), so that a calibration read from a file is
        written back with its provenance.
    method : str, optional
        ``calibration/method`` (``"simulation"``, ``"robot"``, ``"hybrid"``); by default the
        method the matrix was read with, else ``"simulation"``. ``experiment/isSimulation``
        defaults to ``method == "simulation"``.
    delta_sample_size : array, shape (3,), optional
        Size of the delta sample (m), (z, y, x).
    """
    sm = system_matrix
    acq = sm.acquisition
    if acq is None:
        raise ValueError("system_matrix.acquisition is required to write a calibration")
    periods = np.unique(sm.periods)
    channels = np.unique(sm.channels)
    bins = np.unique(sm.frequency_indices)
    j, c, k = acq.num_periods, acq.num_receive_channels, bins.size
    if periods.max() >= j or channels.max() >= c:
        raise ValueError(
            f"system matrix uses period/channel beyond the acquisition's {j} period(s) and "
            f"{c} channel(s)"
        )
    if bins.max() >= acq.num_frequencies:
        raise ValueError(
            f"system matrix uses bin {bins.max()} but the acquisition has {acq.num_frequencies}"
        )
    full = np.zeros((j, c, k), dtype=np.int64) - 1
    full[sm.periods, sm.channels, np.searchsorted(bins, sm.frequency_indices)] = np.arange(
        sm.num_rows
    )
    if np.any(full[np.ix_(periods, channels, np.arange(k))] < 0) or sm.num_rows != (
        periods.size * channels.size * k
    ):
        raise ValueError(
            "the system matrix has different frequencies in different channels (e.g. after an "
            "SNR selection); MDF stores one frequency list for all channels: write the matrix "
            "read without snr_threshold"
        )
    nbg = sm.num_background_frames
    n = sm.num_voxels + nbg
    data = np.zeros((n, j, c, k), dtype=np.complex64)
    rows_jck = full >= 0
    frames = np.concatenate([sm.matrix.T, sm.background]) if nbg else sm.matrix.T
    data[:, rows_jck] = frames[:, full[rows_jck]]
    is_bg = np.zeros(n, dtype=bool)
    is_bg[sm.num_voxels :] = True
    selection = None if k == acq.num_frequencies else bins
    if method is None:
        method = sm.metadata.get("calibration_method") or "simulation"
    meta = merge_metadata(sm.metadata.get("mdf_groups"), metadata)
    with safe_h5(path, overwrite) as h5:
        _write_common(h5, meta, acq, n, is_simulation=method == "simulation")
        _write_measurement_group(
            h5,
            data,
            fast_frame_axis=True,
            fourier=True,
            frequency_selection=selection,
            is_background_frame=is_bg,
            background_corrected=sm.background_corrected,
            transfer_function_corrected=sm.transfer_function_corrected,
        )
        write_grid(h5, "calibration", sm.grid_shape, sm.fov, sm.center)
        put(h5, "calibration/method", method)
        if sm.snr is not None:
            snr = np.zeros((j, c, k))
            snr[rows_jck] = sm.snr[full[rows_jck]]
            put(h5, "calibration/snr", snr)
        if delta_sample_size is not None:
            put(h5, "calibration/deltaSampleSize", np.asarray(delta_sample_size)[::-1])
    return Path(path)


def write_measurement(
    path: str | PathLike,
    data: np.ndarray,
    acquisition: Acquisition,
    *,
    frequency_indices: np.ndarray | None = None,
    is_background_frame: np.ndarray | None = None,
    background_corrected: bool = False,
    fast_frame_axis: bool = False,
    frame_permutation: np.ndarray | None = None,
    overwrite: bool = False,
    metadata: dict | None = None,
) -> Path:
    """Write measured (or simulated) signals as an MDF 2.1 measurement file.

    Parameters
    ----------
    data : ndarray
        Complex spectra (frames, channels, K) or (frames, periods, channels, K); or real time
        signals (frames, channels, V) / (frames, periods, channels, V), which are stored in the
        time domain.
    acquisition : Acquisition
        Drive-field and receiver settings.
    frequency_indices : ndarray of int, shape (K,), optional
        0-based rfft bins of the spectra when they are a selection; all bins otherwise.
    is_background_frame : ndarray of bool, shape (frames,), optional
        Which frames are background (empty-scanner) frames.
    background_corrected : bool
        Whether the data have had the background removed already.
    fast_frame_axis : bool
        Store the frame axis last (J x C x K x N) instead of first.
    frame_permutation : ndarray of int, shape (frames,), optional
        0-based acquisition index of each stored frame (stored as 1-based
        ``measurement/framePermutation``).
    overwrite : bool
        Replace an existing file.
    metadata : dict, optional
        Values for the ``study``, ``experiment``, ``tracer`` and ``scanner`` groups.
    """
    arr = np.asarray(data)
    if arr.ndim == 3:
        arr = arr[:, np.newaxis]
    if arr.ndim != 4:
        raise ValueError(
            f"data must be (frames, channels, K) or (frames, periods, channels, K), got {arr.shape}"
        )
    fourier = np.iscomplexobj(arr)
    n, j, c, k = arr.shape
    if c != acquisition.num_receive_channels or j != acquisition.num_periods:
        raise ValueError(
            f"data has {j} period(s) and {c} channel(s) but the acquisition declares "
            f"{acquisition.num_periods} and {acquisition.num_receive_channels}"
        )
    if fourier:
        expected = (
            acquisition.num_frequencies if frequency_indices is None else len(frequency_indices)
        )
        if k != expected:
            raise ValueError(f"data has {k} frequencies, expected {expected}")
        arr = arr.astype(np.complex64)
    else:
        if frequency_indices is not None:
            raise ValueError("frequency_indices only applies to frequency-domain (complex) data")
        if k != acquisition.num_sampling_points:
            raise ValueError(
                f"time data has {k} samples, expected numSamplingPoints "
                f"{acquisition.num_sampling_points}"
            )
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("data contains NaN or infinite values")
    if is_background_frame is None:
        is_background_frame = np.zeros(n, dtype=bool)
    is_background_frame = np.asarray(is_background_frame, dtype=bool)
    if is_background_frame.shape != (n,):
        raise ValueError(
            f"is_background_frame must have {n} entries, got {is_background_frame.shape}"
        )
    if frame_permutation is not None:
        frame_permutation = np.asarray(frame_permutation, dtype=np.int64)
        if not np.array_equal(np.sort(frame_permutation), np.arange(n)):
            raise ValueError(f"frame_permutation must be a permutation of 0..{n - 1}")
    selection = None
    if frequency_indices is not None:
        selection = np.asarray(frequency_indices, dtype=np.int64)
        if np.any(np.diff(selection) <= 0) or selection.min() < 0:
            raise ValueError("frequency_indices must be strictly increasing and non-negative")
        if selection.max() >= acquisition.num_frequencies:
            raise ValueError(
                f"frequency_indices reach bin {selection.max()} but the acquisition has "
                f"{acquisition.num_frequencies} bins"
            )
    with safe_h5(path, overwrite) as h5:
        _write_common(h5, metadata, acquisition, n)
        _write_measurement_group(
            h5,
            arr,
            fast_frame_axis=fast_frame_axis,
            fourier=fourier,
            frequency_selection=selection,
            is_background_frame=is_background_frame,
            background_corrected=background_corrected,
            frame_permutation=frame_permutation,
        )
    return Path(path)


def write_reconstruction(
    path: str | PathLike,
    image: MPIImage,
    *,
    overwrite: bool = False,
    metadata: dict | None = None,
    acquisition: Acquisition | None = None,
) -> Path:
    """Write an image as an MDF 2.1 reconstruction (``reconstruction/data`` is Q x P x 1).

    Voxel positions (x, y, z triples, m) are stored in ``reconstruction/positions``; the
    image's own metadata (method and parameters) goes to the ``_napari_mpi`` group as text.
    """
    q = image.num_frames
    p = image.grid.num_voxels
    meta = merge_metadata(image.metadata.get("mdf_groups"), metadata)
    with safe_h5(path, overwrite) as h5:
        _write_common(h5, meta, acquisition, q)
        h5.create_dataset("reconstruction/data", data=image.data.reshape(q, p, 1))
        write_grid(h5, "reconstruction", image.grid_shape, image.fov, image.center)
        zz, yy, xx = np.meshgrid(*(image.grid.coordinates(a) for a in range(3)), indexing="ij")
        positions = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
        put(h5, "reconstruction/positions", positions)
        put(h5, "reconstruction/isOverscanRegion", np.zeros(p, dtype=bool))
        for key, value in image.metadata.items():
            if key == "mdf_groups":
                continue
            if isinstance(value, str | int | float | bool):
                put(h5, f"_napari_mpi/image/{key}", value)
            elif isinstance(value, dict):
                put(h5, f"_napari_mpi/image/{key}", json.dumps(value, default=str))
    return Path(path)


def write_mdf(path: str | PathLike, obj: SystemMatrix | MPIImage, **kwargs) -> Path:
    """Write a system matrix (calibration) or an image (reconstruction) as MDF 2.1.

    Measurements, which need their acquisition settings, are written with
    :func:`write_measurement`. Keyword arguments go to :func:`write_calibration` or
    :func:`write_reconstruction`; ``overwrite=False`` by default.
    """
    if isinstance(obj, SystemMatrix):
        return write_calibration(path, obj, **kwargs)
    if isinstance(obj, MPIImage):
        return write_reconstruction(path, obj, **kwargs)
    raise TypeError(
        f"write_mdf writes a SystemMatrix or an MPIImage, got {type(obj).__name__}; use "
        "write_measurement for signals"
    )
