"""Lazy reading of MDF files (v2.x and legacy v1): metadata, system matrices, measurements, images.

The reader opens the file read-only and reads only what a call asks for: the metadata on first
use, and for a system matrix only the selected rows (HDF5 hyperslabs), so a calibration of
several GB can be filtered without loading it whole.

:class:`MDFFile` is a facade; each part of the format is read by its own module:

=====================  ===========================================================
``_acquisition.py``    drive field, receiver, gradient (:class:`Acquisition`)
``_layout.py``         where frames, periods, channels and samples lie in the data
``_grid.py``           voxel grid of a calibration or reconstruction
``_calibration.py``    system matrix with frequency selection, SNR
``_measurement.py``    frame order, background frames, conversion, spectra
``_reconstruction.py`` images
=====================  ===========================================================
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from ..acquisition import Acquisition
from ..frequency_selection import FrequencySelection
from ..image import MPIImage
from ..system_matrix import SystemMatrix
from ._acquisition import NO_ACQUISITION_FLAG, read_acquisition
from ._calibration import read_stored_snr, read_system_matrix
from ._fields import FieldReader
from ._grid import read_grid
from ._layout import DataLayout, build_layout
from ._measurement import background_mask, read_measurements, read_spectra
from ._paths import check_regular_file
from ._reconstruction import read_image, reco_shape
from .errors import MDFError

#: Kinds of MDF file the reader recognises.
KINDS = ("calibration", "measurement", "reconstruction", "metadata")

_METADATA_GROUPS = ("study", "experiment", "tracer", "scanner", "acquisition")


def read_mdf(path: str | PathLike) -> MDFFile:
    """Open an MDF file (v2.x or legacy v1) for lazy, read-only access.

    Parameters
    ----------
    path : str or PathLike
        The ``.mdf`` / ``.h5`` / ``.hdf5`` file.

    Returns
    -------
    MDFFile
        A handle; use it as a context manager (``with read_mdf(p) as f: ...``) or call
        :meth:`MDFFile.close` when done.

    Raises
    ------
    MDFError
        If the file is not HDF5, is truncated, is not an MDF file, or is not a regular file
        (a folder, a FIFO, a device); :class:`MDFFileNotFoundError` (an MDFError and a
        ``FileNotFoundError``) if ``path`` does not exist.

    Examples
    --------
    >>> with read_mdf("calibration.mdf") as f:                      # doctest: +SKIP
    ...     sm = f.system_matrix(snr_threshold=3, min_frequency=80e3)
    """
    return MDFFile(path)


def is_mdf(path: str | PathLike) -> bool:
    """True when ``path`` is a regular HDF5 file that looks like MDF (``/version`` and an MDF
    group). Never raises: anything that cannot be checked (a FIFO, a device, a corrupt file,
    a bad name) is not MDF."""
    try:
        p = Path(path)
        size = check_regular_file(p)
        with h5py.File(p, "r") as h5:
            f = FieldReader(h5, p, size)
            return f.has("version") and any(
                f.has(g) for g in ("acquisition", "measurement", "calibration", "reconstruction")
            )
    except Exception:  # a yes/no question: any failure means "not MDF"
        return False


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.strip().lstrip("vV").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


class MDFFile:
    """A lazy, read-only view of one MDF file.

    Attributes
    ----------
    path : Path
        The file.
    version : str
        The file's ``/version`` string.
    kind : str
        One of ``"calibration"``, ``"measurement"``, ``"reconstruction"``, ``"metadata"``.
    """

    def __init__(self, path: str | PathLike) -> None:
        try:
            self.path = Path(path)
        except TypeError as exc:
            raise MDFError(None, None, f"expected a path, got {type(path).__name__}") from exc
        size = check_regular_file(self.path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except Exception as exc:  # h5py raises several types for bad files
            text = str(exc).split("\n")[0][:300]
            raise MDFError(
                self.path, None, f"cannot be opened as HDF5 (not HDF5, or truncated): {text}"
            ) from exc
        self._f = FieldReader(self._h5, self.path, size)
        try:
            self.version = self._f.string("version")
            if self.version is None:
                raise self._f.error("version", "is missing: this HDF5 file is not an MDF file")
            self.version_info = _parse_version(self.version)
            if not self.version_info or self.version_info[0] not in (1, 2):
                raise self._f.error(
                    "version", f"expected an MDF version 1.x or 2.x, found '{self.version}'"
                )
            self.kind = self._detect_kind()
        except BaseException:
            self._h5.close()
            raise
        self._layout: DataLayout | None = None
        self._acquisition: Acquisition | None = None
        self._metadata: dict | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._h5.close()

    def __enter__(self) -> MDFFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MDFFile('{self.path}', version={self.version!r}, kind={self.kind!r})"

    @property
    def is_v1(self) -> bool:
        """Whether the file follows the legacy MDF 1.x layout."""
        return self.version_info[0] == 1

    def _detect_kind(self) -> str:
        f = self._f
        if self.is_v1:
            if f.has("calibration"):
                return "calibration"
            if f.has("reconstruction/data"):
                return "reconstruction"
            if f.has("measurement/dataFD") or f.has("measurement/dataTD"):
                return "measurement"
            return "metadata"
        if f.has("calibration"):
            return "calibration"
        if f.has("reconstruction/data"):
            return "reconstruction"
        if f.has("measurement"):
            return "measurement"
        return "metadata"

    # -- metadata -----------------------------------------------------------------------------
    @property
    def metadata(self) -> dict:
        """Study, experiment, tracer, scanner and acquisition fields as plain Python values.

        The keys are the MDF group names; ``acquisition`` holds ``drivefield`` and ``receiver``
        sub-dictionaries, also available as the top-level keys ``"drivefield"`` and
        ``"receiver"``. Root fields (``uuid``, ``time``) are under ``"file"``.
        """
        if self._metadata is None:
            meta: dict = {g: self._f.group_contents(g) for g in _METADATA_GROUPS}
            root = {}
            for name in ("version", "uuid", "time", "date"):
                if self._f.has(name):
                    root[name] = self._f.string(name)
            meta["file"] = root
            # drive field and receiver are sub-groups of acquisition; offer them at the top too
            meta["drivefield"] = meta["acquisition"].get("drivefield", {})
            meta["receiver"] = meta["acquisition"].get("receiver", {})
            self._metadata = meta
        return self._metadata

    @property
    def acquisition(self) -> Acquisition:
        """Drive-field and receiver settings (:class:`~napari_mpi.Acquisition`)."""
        if self._acquisition is None:
            if self.has_placeholder_acquisition:
                raise self._f.error(
                    "acquisition",
                    "holds no acquisition settings (the file was written without them; "
                    f"{NO_ACQUISITION_FLAG} = 1)",
                )
            self._acquisition = read_acquisition(self._f, self.is_v1)
        return self._acquisition

    @property
    def has_placeholder_acquisition(self) -> bool:
        """True for files written without acquisition settings (zeros in ``/acquisition``)."""
        return self._f.flag(NO_ACQUISITION_FLAG)

    # -- data layout --------------------------------------------------------------------------
    def _data_layout(self) -> DataLayout:
        if self._layout is None:
            self._layout = build_layout(self._f, self.acquisition, is_v1=self.is_v1, kind=self.kind)
        return self._layout

    def _require_data(self) -> DataLayout:
        if self.kind in ("metadata", "reconstruction"):
            raise self._f.error(None, f"is a {self.kind} file and holds no measurement data")
        return self._data_layout()

    @property
    def stored_frequency_indices(self) -> np.ndarray | None:
        """rfft bins stored per channel (0-based); None when the file holds no signal data."""
        if self.kind in ("metadata", "reconstruction"):
            return None
        layout = self._data_layout()
        if layout.fourier:
            return layout.bins.copy()
        return np.arange(self.acquisition.num_frequencies)

    @property
    def frequencies(self) -> np.ndarray | None:
        """Frequencies of the stored bins (Hz); None when the file holds no signal data."""
        bins = self.stored_frequency_indices
        return None if bins is None else bins / self.acquisition.cycle

    @property
    def num_frames(self) -> int:
        """Number of stored frames, background frames included (0 without data)."""
        if self.kind in ("metadata", "reconstruction"):
            return 0 if self.kind == "metadata" else reco_shape(self._f)[0]
        return self._data_layout().num_frames

    @property
    def num_background_frames(self) -> int:
        """Number of stored background (empty-scanner) frames."""
        if self.kind in ("metadata", "reconstruction"):
            return 0
        return int(background_mask(self, self._data_layout()).sum())

    # -- calibration --------------------------------------------------------------------------
    def stored_snr(self) -> np.ndarray | None:
        """``calibration/snr`` as (periods, channels, stored frequencies), or None."""
        if self.kind != "calibration":
            return None
        return read_stored_snr(self, self._data_layout())

    def system_matrix(
        self,
        snr_threshold: float | str | FrequencySelection | None = None,
        min_frequency: float | None = None,
        max_frequency: float | None = None,
        channels: int | list[int] | None = None,
        background_correction: bool = True,
        transfer_function_correction: bool = False,
        *,
        selection: FrequencySelection | dict | None = None,
    ) -> SystemMatrix:
        """Read the system matrix of a calibration file, with frequency selection.

        Parameters
        ----------
        snr_threshold : float or "auto", optional
            Keep rows whose SNR (``calibration/snr``, or estimated from background frames when
            the file has none) is at least this value (a row exactly at it is kept); "auto":
            :data:`~napari_mpi.frequency_selection.AUTO_SNR_THRESHOLD` where there is an SNR.
        min_frequency, max_frequency : float, optional
            Keep rows whose frequency lies in this closed range (Hz).
        channels : int or list of int, optional
            Receive channels to keep (0-based); all by default.
        background_correction : bool
            Subtract the mean of the background frames (when the file has background frames
            and its data are not background-corrected already). Background frames are dropped
            from the matrix in any case and kept in :attr:`SystemMatrix.background`.
        transfer_function_correction : bool
            Divide by ``acquisition/receiver/transferFunction`` (unless the file says it is
            corrected already).
        selection : FrequencySelection, optional
            All the filters in one object (instead of the four keyword arguments above, which
            keep working; not both). A selection is recorded in ``metadata``.

        Returns
        -------
        SystemMatrix
            ``matrix`` of shape (rows, voxels), complex64; rows ordered by channel, then
            frequency ascending.
        """
        if isinstance(snr_threshold, FrequencySelection | dict):
            selection, snr_threshold = snr_threshold, None
        if isinstance(channels, int | np.integer):
            channels = [int(channels)]
        sel = FrequencySelection.coerce(
            selection,
            snr_threshold=snr_threshold,
            min_frequency=min_frequency,
            max_frequency=max_frequency,
            channels=channels,
        )
        return read_system_matrix(
            self,
            sel,
            background_correction=background_correction,
            transfer_function_correction=transfer_function_correction,
        )

    # -- measurements -------------------------------------------------------------------------
    def measurements(
        self,
        system_matrix: SystemMatrix,
        frames: int | slice | list[int] | np.ndarray | None = None,
        background_correction: bool = True,
        average: bool = False,
        transfer_function_correction: bool | None = None,
    ) -> np.ndarray:
        """Read measured spectra aligned row for row with ``system_matrix``.

        Parameters
        ----------
        system_matrix : SystemMatrix
            The calibration to align with: the result has one column per row of its matrix,
            whatever frequency selection either file stores.
        frames : int, slice, list of int, optional
            Foreground frames to read, 0-based in acquisition order (background frames are
            not counted). All by default.
        background_correction : bool
            Subtract the mean of the file's background frames (when it has some and its data
            are not background-corrected already).
        average : bool
            Return the mean over the selected frames, shape (1, rows).
        transfer_function_correction : bool, optional
            Divide by the receiver transfer function; by default, exactly when the system
            matrix was corrected.

        Returns
        -------
        ndarray, shape (frames, rows), complex64
        """
        return read_measurements(
            self,
            system_matrix,
            frames=frames,
            background_correction=background_correction,
            average=average,
            transfer_function_correction=transfer_function_correction,
        )

    def spectra(
        self,
        frames: int | slice | list[int] | np.ndarray | None = None,
        background_correction: bool = False,
        include_background: bool = False,
    ) -> np.ndarray:
        """Every stored frequency of the selected frames: (frames, periods, channels, K) complex.

        Time-domain data are Fourier transformed (rfft over one cycle) after applying
        ``dataConversionFactor``. Frames are 0-based in acquisition order; background frames are
        skipped unless ``include_background`` (then ``frames`` counts all stored frames).
        """
        return read_spectra(
            self,
            frames=frames,
            background_correction=background_correction,
            include_background=include_background,
        )

    # -- reconstructions ----------------------------------------------------------------------
    def image(self, channel: int = 0) -> MPIImage:
        """Read a reconstruction: data (frames, z, y, x) with its grid.

        Parameters
        ----------
        channel : int
            Multispectral channel (MDF's S axis) to return.
        """
        return read_image(self, channel)

    # -- summary ------------------------------------------------------------------------------
    def summary(self) -> dict:
        """What the reader sees, as JSON-ready values (the ``napari-mpi info`` output)."""
        out: dict = {"path": str(self.path), "kind": self.kind, "version": self.version}
        out["frames"] = self.num_frames
        out["background_frames"] = self.num_background_frames
        acq = None
        if self._f.has("acquisition/receiver/numSamplingPoints") and (
            not self.has_placeholder_acquisition
        ):
            acq = self.acquisition
        out["channels"] = None if acq is None else acq.num_receive_channels
        out["frequencies"] = None
        out["grid_xyz"] = out["fov_m_xyz"] = out["center_m_xyz"] = None
        if self.kind in ("calibration", "measurement"):
            layout = self._data_layout()
            out["channels"] = layout.num_channels
            out["frequencies"] = int(self.stored_frequency_indices.size)
            out["periods"] = layout.num_periods
            out["time_domain"] = not layout.fourier
            out["fast_frame_axis"] = layout.frame_axis > layout.sample_axis
        group = {"calibration": "calibration", "reconstruction": "reconstruction"}.get(self.kind)
        if group is not None:
            voxels = (
                self.num_frames - self.num_background_frames
                if self.kind == "calibration"
                else reco_shape(self._f)[1]
            )
            shape, fov, center, _ = read_grid(self._f, group, voxels)
            out["grid_xyz"] = list(shape[::-1])
            out["fov_m_xyz"] = fov[::-1].tolist()
            out["center_m_xyz"] = center[::-1].tolist()
        if self.kind == "reconstruction":
            out["channels"] = reco_shape(self._f)[2]
        if acq is not None:
            out["sampling_points"] = acq.num_sampling_points
            out["bandwidth_hz"] = acq.bandwidth
            out["drive_frequencies_hz"] = acq.drive_frequencies.tolist()
            out["drive_strength_t"] = acq.drive_strength.tolist()
            out["gradient_t_per_m_xyz"] = None if acq.gradient is None else acq.gradient.tolist()
            out["gradient_matrix_t_per_m"] = (
                None if acq.gradient_matrix is None else acq.gradient_matrix.tolist()
            )
        f = self._f
        out["study"] = f.string("study/name")
        out["experiment"] = f.string("experiment/name")
        out["scanner"] = f.string("scanner/name") or f.string("scanner/model")
        out["topology"] = f.string("scanner/topology")
        return out
