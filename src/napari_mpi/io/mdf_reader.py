"""Lazy reading of MDF files (v2.x and legacy v1): metadata, system matrices, measurements, images.

The reader opens the file read-only and reads only what a call asks for: the metadata on first
use, and for a system matrix only the selected rows (HDF5 hyperslabs), so a calibration of
several GB can be filtered without loading it whole.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import h5py
import numpy as np

from ..acquisition import Acquisition
from ..image import MPIImage
from ..system_matrix import SystemMatrix
from ._fields import FieldReader
from ._h5 import compound_to_complex
from ._layout import DataLayout, complex_kind
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
    FileNotFoundError
        If ``path`` does not exist.
    MDFError
        If the file is not HDF5, is truncated, or is not an MDF file.

    Examples
    --------
    >>> with read_mdf("calibration.mdf") as f:                      # doctest: +SKIP
    ...     sm = f.system_matrix(snr_threshold=3, min_frequency=80e3)
    """
    return MDFFile(path)


def is_mdf(path: str | PathLike) -> bool:
    """True when ``path`` is an HDF5 file that looks like MDF (has ``/version`` and MDF groups)."""
    try:
        with h5py.File(path, "r") as h5:
            return "version" in h5 and any(
                g in h5 for g in ("acquisition", "measurement", "calibration", "reconstruction")
            )
    except (OSError, ValueError):
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
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise MDFError(self.path, None, "is a directory, expected an MDF (HDF5) file")
        try:
            self._h5 = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:
            raise MDFError(
                self.path, None, f"cannot be opened as HDF5 (not HDF5, or truncated): {exc}"
            ) from exc
        self._f = FieldReader(self._h5, self.path)
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
            self._acquisition = self._read_acquisition()
        return self._acquisition

    def _read_acquisition(self) -> Acquisition:
        f = self._f
        df, rx = "acquisition/drivefield", "acquisition/receiver"
        dividers = f.array(f"{df}/divider", kind="i")
        num_drive = dividers.shape[0] if dividers.ndim else 1
        dividers = dividers.reshape(num_drive, -1)[:, 0]

        def per_drive_channel(field: str, default: float) -> np.ndarray:
            if not f.has(field):
                return np.full(num_drive, default)
            value = f.array(field)
            try:
                if value.ndim == 3:  # J x D x F
                    return value[0, :, 0].reshape(num_drive)
                if value.ndim == 2:  # D x F
                    return value[:, 0].reshape(num_drive)
                return value.reshape(num_drive)
            except ValueError:
                raise f.error(
                    field,
                    f"expected one value per drive channel ({num_drive}), found {value.shape}",
                ) from None

        gradient = None
        if f.has("acquisition/gradient"):
            g = f.array("acquisition/gradient")
            if g.size % 3 or g.size == 0:
                raise f.error("acquisition/gradient", f"expected (..., 3) values, found {g.shape}")
            gradient = g.reshape(-1, 3)[0]
        if self.is_v1:
            num_periods = 1
            num_averages = int(f.number(f"{df}/averages", integer=True, default=1))
        else:
            if f.has("acquisition/numPeriodsPerFrame"):
                num_periods = f.number("acquisition/numPeriodsPerFrame", integer=True)
            else:  # MDF 2.0 name
                num_periods = f.number("acquisition/numPeriods", integer=True, default=1)
            num_averages = f.number("acquisition/numAverages", integer=True, default=1)
        waveform = f.string(f"{df}/waveform", default="sine") or "sine"
        try:
            return Acquisition(
                base_frequency=f.number(f"{df}/baseFrequency"),
                dividers=dividers,
                drive_strength=per_drive_channel(f"{df}/strength", 0.0),
                drive_phase=per_drive_channel(f"{df}/phase", 0.0),
                num_sampling_points=f.number(f"{rx}/numSamplingPoints", integer=True),
                bandwidth=f.number(f"{rx}/bandwidth"),
                num_receive_channels=f.number(f"{rx}/numChannels", integer=True),
                gradient=gradient,
                num_periods=num_periods,
                num_averages=num_averages,
                waveform=waveform,
            )
        except ValueError as exc:
            if isinstance(exc, MDFError):
                raise
            raise f.error("acquisition", str(exc)) from None

    # -- data layout --------------------------------------------------------------------------
    def _data_layout(self) -> DataLayout:
        if self._layout is None:
            self._layout = self._build_layout()
        return self._layout

    def _build_layout(self) -> DataLayout:
        f = self._f
        acq = self.acquisition
        num_freq = acq.num_frequencies
        if self.is_v1:
            if self.kind == "calibration":
                field, axes, fourier = "calibration/dataFD", (2, 0, 1, None), True
            elif f.has("measurement/dataFD"):
                field, axes, fourier = "measurement/dataFD", (0, 1, 2, None), True
            elif f.has("measurement/dataTD"):
                field, axes, fourier = "measurement/dataTD", (0, 1, 2, None), False
            else:
                raise f.error("measurement/data", "this file holds no measurement data")
            ds = f.dataset(field)
            trailing = fourier and complex_kind(ds) == "real"
            expected_ndim = 3 + int(trailing)
            if ds.ndim != expected_ndim or (trailing and ds.shape[-1] != 2):
                raise f.error(
                    field,
                    f"expected {expected_ndim} dimensions"
                    + (" with a trailing real/imaginary axis of length 2" if trailing else "")
                    + f", found shape {ds.shape}",
                )
            frame_axis, channel_axis, sample_axis, period_axis = axes
        else:
            field = "measurement/data"
            ds = f.dataset(field)
            if self._f.flag("measurement/isSparsityTransformed"):
                raise f.error(
                    "measurement/isSparsityTransformed",
                    "sparsity-transformed calibrations (compressed with "
                    f"'{f.string('measurement/sparsityTransformation', default='?')}') "
                    "are not supported; store the full system matrix instead",
                )
            fourier = f.flag("measurement/isFourierTransformed")
            if f.has("measurement/isFastFrameAxis"):
                fast = f.flag("measurement/isFastFrameAxis")
            else:  # MDF 2.0 name
                fast = f.flag("measurement/isTransposed")
            kind = complex_kind(ds)
            if kind == "real" and ds.dtype.kind not in "iuf":
                raise f.error(field, f"expected numbers, found data of type {ds.dtype}")
            trailing = fourier and kind == "real"
            if not fourier and kind != "real":
                raise f.error(
                    field,
                    "holds complex values but measurement/isFourierTransformed is 0 (time data "
                    "must be real)",
                )
            expected_ndim = 4 + int(trailing)
            if ds.ndim != expected_ndim or (trailing and ds.shape[-1] != 2):
                layout = "J x C x K x N" if fast else "N x J x C x K"
                raise f.error(
                    field,
                    f"expected {expected_ndim} dimensions ({layout}"
                    + (" x 2" if trailing else "")
                    + f"), found shape {ds.shape}",
                )
            if fast:
                frame_axis, period_axis, channel_axis, sample_axis = 3, 0, 1, 2
            else:
                frame_axis, period_axis, channel_axis, sample_axis = 0, 1, 2, 3
        layout = DataLayout(
            field=field,
            ds=ds,
            frame_axis=frame_axis,
            channel_axis=channel_axis,
            sample_axis=sample_axis,
            period_axis=period_axis,
            trailing_complex=trailing,
            fourier=fourier,
            num_sampling_points=acq.num_sampling_points,
        )
        if layout.num_channels != acq.num_receive_channels:
            raise f.error(
                field,
                f"has {layout.num_channels} receive channel(s) but "
                f"acquisition/receiver/numChannels is {acq.num_receive_channels}",
            )
        if fourier:
            if not self.is_v1 and f.flag("measurement/isFrequencySelection"):
                sel = f.array("measurement/frequencySelection", kind="i", ndim=(1,)) - 1
                if sel.size != layout.num_samples:
                    raise f.error(
                        "measurement/frequencySelection",
                        f"has {sel.size} entries but {field} stores {layout.num_samples} "
                        "frequencies",
                    )
                if sel.size and (sel.min() < 0 or sel.max() >= num_freq):
                    raise f.error(
                        "measurement/frequencySelection",
                        f"expected 1-based indices in 1..{num_freq}, found {sel.min() + 1}.."
                        f"{sel.max() + 1}",
                    )
                if np.any(np.diff(sel) <= 0):
                    raise f.error(
                        "measurement/frequencySelection", "expected strictly increasing indices"
                    )
                layout.bins = sel
            else:
                if layout.num_samples != num_freq:
                    raise f.error(
                        field,
                        f"stores {layout.num_samples} frequencies but numSamplingPoints "
                        f"{acq.num_sampling_points} gives {num_freq} (and there is no frequency "
                        "selection)",
                    )
                layout.bins = np.arange(num_freq)
        elif layout.num_samples != acq.num_sampling_points:
            raise f.error(
                field,
                f"stores {layout.num_samples} time samples but "
                f"acquisition/receiver/numSamplingPoints is {acq.num_sampling_points}",
            )
        if layout.num_periods != acq.num_periods and not self.is_v1:
            raise f.error(
                field,
                f"has {layout.num_periods} period(s) per frame but the acquisition declares "
                f"{acq.num_periods}",
            )
        return layout

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
        return None if bins is None else self.acquisition.frequencies[bins]

    def _background_mask(self, layout: DataLayout) -> np.ndarray:
        n = layout.num_frames
        field = "measurement/isBackgroundFrame"
        if self.is_v1 or not self._f.has(field):
            return np.zeros(n, dtype=bool)
        mask = self._f.array(field, kind="i", ndim=(1,)).astype(bool)
        if mask.size != n:
            raise self._f.error(field, f"expected {n} entries (one per frame), found {mask.size}")
        return mask

    @property
    def num_frames(self) -> int:
        """Number of stored frames, background frames included (0 without data)."""
        if self.kind in ("metadata", "reconstruction"):
            return 0 if self.kind == "metadata" else self._reco_shape()[0]
        return self._data_layout().num_frames

    @property
    def num_background_frames(self) -> int:
        """Number of stored background (empty-scanner) frames."""
        if self.kind in ("metadata", "reconstruction"):
            return 0
        return int(self._background_mask(self._data_layout()).sum())

    def _conversion(self, layout: DataLayout) -> np.ndarray | None:
        field = "acquisition/receiver/dataConversionFactor"
        if self.is_v1 or not self._f.has(field):
            return None
        value = self._f.array(field)
        c = layout.num_channels
        if value.shape == (c, 2):
            return value
        if value.shape == (2, c):
            return value.T
        if value.size == 2 and c == 1:
            return value.reshape(1, 2)
        raise self._f.error(field, f"expected C x 2 = ({c}, 2) values, found shape {value.shape}")

    def _transfer_function(self, layout: DataLayout, bins: np.ndarray, channels: np.ndarray):
        field = "acquisition/receiver/transferFunction"
        if not self._f.has(field):
            raise self._f.error(
                field, "is missing, so the transfer-function correction cannot be applied"
            )
        tf = self._f.array(field, kind="c")
        c, num_freq = layout.num_channels, self.acquisition.num_frequencies
        if tf.shape == (num_freq, c) and tf.shape != (c, num_freq):
            tf = tf.T
        if tf.shape != (c, num_freq):
            raise self._f.error(field, f"expected C x L = ({c}, {num_freq}), found {tf.shape}")
        values = tf[channels, bins]
        if np.any(values == 0) or not np.all(np.isfinite(values)):
            raise self._f.error(field, "is zero or not finite at a selected frequency")
        return values

    # -- calibration --------------------------------------------------------------------------
    def _grid(
        self, group: str, num_voxels: int
    ) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, np.ndarray]:
        """Grid shape (z, y, x), FOV and centre (z, y, x) and the voxel permutation of a group."""
        f = self._f
        if f.has(f"{group}/size"):
            size_xyz = f.array(f"{group}/size", kind="i", size=3).reshape(3)
        elif f.has(f"{group}/positions"):
            pos = f.array(f"{group}/positions", ndim=(2,))
            size_xyz = np.array([np.unique(np.round(pos[:, a], 9)).size for a in range(3)])
            if int(np.prod(size_xyz)) != num_voxels:
                size_xyz = np.array([num_voxels, 1, 1])
        else:
            size_xyz = np.array([num_voxels, 1, 1])
        if np.any(size_xyz < 1) or int(np.prod(size_xyz)) != num_voxels:
            raise f.error(
                f"{group}/size",
                f"grid {size_xyz.tolist()} (x, y, z) has {int(np.prod(size_xyz))} voxels but the "
                f"data has {num_voxels}",
            )
        fov = (
            f.array(f"{group}/fieldOfView", size=3).reshape(3)
            if f.has(f"{group}/fieldOfView")
            else np.zeros(3)
        )
        center = (
            f.array(f"{group}/fieldOfViewCenter", size=3).reshape(3)
            if f.has(f"{group}/fieldOfViewCenter")
            else np.zeros(3)
        )
        order = (f.string(f"{group}/order", default="xyz") or "xyz").strip().lower()
        if sorted(order) != ["x", "y", "z"]:
            raise f.error(f"{group}/order", f"expected a permutation of 'xyz', found '{order}'")
        # stored index: first letter of `order` varies fastest.
        sizes = {"x": size_xyz[0], "y": size_xyz[1], "z": size_xyz[2]}
        slow_to_fast = order[::-1]
        stored = np.arange(num_voxels).reshape([int(sizes[a]) for a in slow_to_fast])
        perm = stored.transpose([slow_to_fast.index(a) for a in "zyx"]).reshape(-1)
        shape = (int(size_xyz[2]), int(size_xyz[1]), int(size_xyz[0]))
        return shape, fov[::-1].copy(), center[::-1].copy(), perm

    def stored_snr(self) -> np.ndarray | None:
        """``calibration/snr`` as (periods, channels, stored frequencies), or None."""
        if self.kind != "calibration":
            return None
        return self._stored_snr(self._data_layout())

    def _stored_snr(self, layout: DataLayout) -> np.ndarray | None:
        """calibration/snr as (J, C, K) over stored frequencies, or None."""
        f = self._f
        field = "calibration/snrFD" if self.is_v1 else "calibration/snr"
        if not f.has(field):
            return None
        snr = f.array(field)
        j, c, k = layout.num_periods, layout.num_channels, layout.num_samples
        if not layout.fourier:
            k = self.acquisition.num_frequencies
        if snr.size == j * c * k:
            return snr.reshape(j, c, k)
        if self.is_v1 and snr.shape == (k, c):
            return snr.T.reshape(1, c, k)
        raise f.error(field, f"expected J x C x K = ({j}, {c}, {k}) values, found {snr.shape}")

    def system_matrix(
        self,
        snr_threshold: float | None = None,
        min_frequency: float | None = None,
        max_frequency: float | None = None,
        channels: int | list[int] | None = None,
        background_correction: bool = True,
        transfer_function_correction: bool = False,
    ) -> SystemMatrix:
        """Read the system matrix of a calibration file, with frequency selection.

        Parameters
        ----------
        snr_threshold : float, optional
            Keep rows whose SNR (``calibration/snr``, or estimated from background frames when
            the file has none) is at least this value.
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

        Returns
        -------
        SystemMatrix
            ``matrix`` of shape (rows, voxels), complex64; rows ordered by channel, then
            frequency ascending.
        """
        if self.kind != "calibration":
            raise self._f.error(None, f"is a {self.kind} file, not a calibration")
        layout = self._data_layout()
        acq = self.acquisition
        bg_mask = self._background_mask(layout)
        fg_idx, bg_idx = np.flatnonzero(~bg_mask), np.flatnonzero(bg_mask)
        if fg_idx.size == 0:
            raise self._f.error("measurement/isBackgroundFrame", "marks every frame as background")
        stored_bins = self.stored_frequency_indices
        num_k = stored_bins.size
        # candidate rows: every (period, channel, stored frequency)
        jj, cc, kk = np.meshgrid(
            np.arange(layout.num_periods),
            np.arange(layout.num_channels),
            np.arange(num_k),
            indexing="ij",
        )
        jj, cc, kk = jj.ravel(), cc.ravel(), kk.ravel()
        freqs = acq.frequencies[stored_bins[kk]]
        keep = np.ones(jj.size, dtype=bool)
        if channels is not None:
            wanted = np.atleast_1d(np.asarray(channels, dtype=np.int64))
            bad = wanted[(wanted < 0) | (wanted >= layout.num_channels)]
            if bad.size:
                raise ValueError(
                    f"channels: {bad.tolist()} out of range; {self.path} has "
                    f"{layout.num_channels} receive channel(s) (0-based)"
                )
            keep &= np.isin(cc, wanted)
        if min_frequency is not None:
            keep &= freqs >= float(min_frequency)
        if max_frequency is not None:
            keep &= freqs <= float(max_frequency)
        bg_already = self._f.flag("measurement/isBackgroundCorrected", default=self.is_v1)
        subtract_bg = background_correction and bg_idx.size > 0 and not bg_already

        stored_snr = self._stored_snr(layout)
        snr = None if stored_snr is None else stored_snr[jj, cc, kk]
        positions = kk if layout.fourier else stored_bins[kk]
        conversion = self._conversion(layout)
        if snr is None and snr_threshold is not None:
            if bg_idx.size < 2:
                raise self._f.error(
                    "calibration/snr",
                    "is missing and the file has fewer than 2 background frames to estimate "
                    "it from, so snr_threshold cannot be applied",
                )
            snr = np.zeros(jj.size)
            cand = np.flatnonzero(keep)
            snr[cand] = self._estimate_snr(
                layout, jj[cand], cc[cand], positions[cand], fg_idx, bg_idx, conversion
            )
        if snr_threshold is not None:
            keep &= snr >= float(snr_threshold)
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            raise ValueError(
                f"{self.path}: the frequency selection (snr_threshold={snr_threshold}, "
                f"min_frequency={min_frequency}, max_frequency={max_frequency}, "
                f"channels={channels}) leaves no rows"
            )
        all_frames = np.arange(layout.num_frames)
        with self._f.guard(layout.field):
            data = layout.read_selection(
                jj[rows], cc[rows], positions[rows], all_frames, conversion
            )
        bins = stored_bins[kk[rows]]
        tf_done = self._f.flag("measurement/isTransferFunctionCorrected")
        if transfer_function_correction and not tf_done:
            data /= self._transfer_function(layout, bins, cc[rows])[:, np.newaxis]
        # data is (rows, frames); keep background frames apart, then drop them
        bg = data[:, bg_idx].T if bg_idx.size else None
        fg = data if bg_idx.size == 0 else data[:, fg_idx]
        del data
        if subtract_bg:
            fg -= bg.mean(axis=0)[:, np.newaxis]
        if snr is None and bg_idx.size >= 2:
            bg_mean = bg.mean(axis=0)[:, np.newaxis]
            snr_rows = _snr_from_background((fg if subtract_bg else fg - bg_mean).T, bg)
        else:
            snr_rows = None if snr is None else snr[rows]
        group = "calibration"
        shape, fov, center, perm = self._grid(group, fg_idx.size)
        matrix = fg if np.array_equal(perm, np.arange(perm.size)) else fg[:, perm]
        return SystemMatrix(
            matrix=matrix,
            channels=cc[rows],
            frequency_indices=bins,
            frequencies=acq.frequencies[bins],
            periods=jj[rows],
            grid_shape=shape,
            fov=fov,
            center=center,
            snr=snr_rows,
            acquisition=acq,
            background=bg,
            background_corrected=bool(subtract_bg or bg_already),
            transfer_function_corrected=bool(transfer_function_correction or tf_done),
            source=str(self.path),
            metadata={
                "calibration_method": self._f.string("calibration/method", default=None),
                "mdf_version": self.version,
            },
        )

    def _estimate_snr(self, layout, jj, cc, positions, fg_idx, bg_idx, conversion) -> np.ndarray:
        """Per-row SNR from background frames, reading one (period, channel) at a time."""
        out = np.empty(jj.size)
        frames = np.arange(layout.num_frames)
        keys = np.stack([jj, cc], axis=1)
        for j, c in np.unique(keys, axis=0):
            rows = np.flatnonzero((jj == j) & (cc == c))
            with self._f.guard(layout.field):
                data = layout.read_selection(
                    jj[rows], cc[rows], positions[rows], frames, conversion, max_gap=10**9
                )
            bg = data[:, bg_idx].T
            out[rows] = _snr_from_background(data[:, fg_idx].T - bg.mean(axis=0), bg)
        return out

    # -- measurements -------------------------------------------------------------------------
    def _acquisition_order(self, layout: DataLayout) -> np.ndarray:
        """Stored frame index of each acquired frame, in acquisition order."""
        n = layout.num_frames
        field = "measurement/framePermutation"
        if self.is_v1 or not self._f.flag("measurement/isFramePermutation"):
            return np.arange(n)
        perm = self._f.array(field, kind="i", ndim=(1,)) - 1
        if perm.size != n or not np.array_equal(np.sort(perm), np.arange(n)):
            raise self._f.error(field, f"expected a permutation of 1..{n} (1-based, one per frame)")
        # stored frame o holds acquired frame perm[o]
        return np.argsort(perm)

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
        layout = self._require_data()
        acq = self.acquisition
        sm_acq = system_matrix.acquisition
        if sm_acq is not None:
            diffs = sm_acq.differences(acq)
            if diffs:
                raise MDFError(
                    self.path,
                    "acquisition",
                    "does not match the calibration "
                    f"({system_matrix.source or 'system matrix'}): " + "; ".join(diffs),
                )
        # map each system-matrix row to a stored sample of this file, by frequency in Hz
        row_bins = np.rint(system_matrix.frequencies * acq.cycle).astype(np.int64)
        off_grid = np.abs(row_bins / acq.cycle - system_matrix.frequencies) > 1e-6 * max(
            1.0, float(np.max(system_matrix.frequencies, initial=1.0))
        )
        stored_bins = self.stored_frequency_indices
        lookup = np.full(acq.num_frequencies, -1, dtype=np.int64)
        lookup[stored_bins] = np.arange(stored_bins.size)
        in_range = (row_bins >= 0) & (row_bins < acq.num_frequencies) & ~off_grid
        pos = np.where(in_range, lookup[np.clip(row_bins, 0, acq.num_frequencies - 1)], -1)
        missing = pos < 0
        if np.any(missing):
            freqs = np.unique(system_matrix.frequencies[missing])
            shown = ", ".join(f"{f / 1e3:.3f} kHz" for f in freqs[:5])
            raise MDFError(
                self.path,
                "measurement/frequencySelection",
                f"lacks {freqs.size} frequenc{'y' if freqs.size == 1 else 'ies'} that the "
                f"system matrix uses ({shown}{', ...' if freqs.size > 5 else ''})",
            )
        bad_channel = system_matrix.channels >= layout.num_channels
        if np.any(bad_channel):
            raise MDFError(
                self.path,
                "acquisition/receiver/numChannels",
                f"has {layout.num_channels} channel(s) but the system matrix uses channel "
                f"{int(system_matrix.channels.max())}",
            )
        if np.any(system_matrix.periods >= layout.num_periods):
            raise MDFError(
                self.path,
                "acquisition/numPeriodsPerFrame",
                f"has {layout.num_periods} period(s) but the system matrix uses period "
                f"{int(system_matrix.periods.max())}",
            )
        bg_mask = self._background_mask(layout)
        order = self._acquisition_order(layout)
        fg_stored = order[~bg_mask[order]]
        bg_stored = np.flatnonzero(bg_mask)
        selected = _select_frames(frames, fg_stored.size, self.path)
        wanted = fg_stored[selected]
        bg_already = self._f.flag("measurement/isBackgroundCorrected", default=False)
        subtract_bg = background_correction and bg_stored.size > 0 and not bg_already
        read_frames = np.unique(np.concatenate([wanted, bg_stored if subtract_bg else []]))
        read_frames = read_frames.astype(np.int64)
        positions = pos if layout.fourier else stored_bins[pos]
        with self._f.guard(layout.field):
            data = layout.read_selection(
                system_matrix.periods,
                system_matrix.channels,
                positions,
                read_frames,
                self._conversion(layout),
            )
        data = data.T  # (frames, rows)
        out = data[np.searchsorted(read_frames, wanted)]
        if subtract_bg:
            bg = data[np.searchsorted(read_frames, bg_stored)]
            out = out - bg.mean(axis=0, keepdims=True)
        if transfer_function_correction is None:
            transfer_function_correction = system_matrix.transfer_function_corrected
        if transfer_function_correction and not self._f.flag(
            "measurement/isTransferFunctionCorrected"
        ):
            out = out / self._transfer_function(layout, row_bins, system_matrix.channels)
        if average:
            out = out.mean(axis=0, keepdims=True)
        return out.astype(np.complex64)

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
        layout = self._require_data()
        bg_mask = self._background_mask(layout)
        order = self._acquisition_order(layout)
        pool = order if include_background else order[~bg_mask[order]]
        wanted = pool[_select_frames(frames, pool.size, self.path)]
        bins = self.stored_frequency_indices
        jj, cc, kk = (
            a.ravel()
            for a in np.meshgrid(
                np.arange(layout.num_periods),
                np.arange(layout.num_channels),
                np.arange(bins.size),
                indexing="ij",
            )
        )
        bg_stored = np.flatnonzero(bg_mask)
        subtract = (
            background_correction
            and bg_stored.size > 0
            and not self._f.flag("measurement/isBackgroundCorrected")
        )
        read_frames = np.unique(np.concatenate([wanted, bg_stored if subtract else []]))
        read_frames = read_frames.astype(np.int64)
        positions = kk if layout.fourier else bins[kk]
        with self._f.guard(layout.field):
            data = layout.read_selection(jj, cc, positions, read_frames, self._conversion(layout))
        data = data.T  # (frames, rows)
        out = data[np.searchsorted(read_frames, wanted)]
        if subtract:
            out = out - data[np.searchsorted(read_frames, bg_stored)].mean(axis=0, keepdims=True)
        shape = (wanted.size, layout.num_periods, layout.num_channels, bins.size)
        return out.reshape(shape).astype(np.complex64)

    # -- reconstructions ----------------------------------------------------------------------
    def _reco_shape(self) -> tuple[int, int, int]:
        ds = self._f.dataset("reconstruction/data")
        shape = ds.shape
        if len(shape) == 3:
            return int(shape[0]), int(shape[1]), int(shape[2])
        if len(shape) == 2:
            return int(shape[0]), int(shape[1]), 1
        if len(shape) == 1:
            return 1, int(shape[0]), 1
        raise self._f.error(
            "reconstruction/data", f"expected Q x P x S (frames x voxels x channels), found {shape}"
        )

    def image(self, channel: int = 0) -> MPIImage:
        """Read a reconstruction: data (frames, z, y, x) with its grid.

        Parameters
        ----------
        channel : int
            Multispectral channel (MDF's S axis) to return.
        """
        if self.kind != "reconstruction":
            raise self._f.error(None, f"is a {self.kind} file, not a reconstruction")
        q, p, s = self._reco_shape()
        if not 0 <= channel < s:
            raise ValueError(f"channel: {channel} out of range; {self.path} has {s} channel(s)")
        ds = self._f.dataset("reconstruction/data")
        kind = complex_kind(ds)
        if kind == "real" and ds.dtype.kind not in "iufb":
            raise self._f.error("reconstruction/data", f"expected numbers, found {ds.dtype}")
        with self._f.guard("reconstruction/data"):
            raw = np.asarray(ds[()]).reshape(q, p, s)[:, :, channel]
        if raw.dtype.names is not None:
            raw = compound_to_complex(raw)
        if np.iscomplexobj(raw):
            raw = raw.real
        shape, fov, center, perm = self._grid("reconstruction", p)
        data = raw[:, perm].reshape((q, *shape)).astype(np.float32)
        meta = {"source": str(self.path), "mdf_version": self.version, "channel": channel}
        if self._f.has("reconstruction/isOverscanRegion"):
            mask = self._f.array("reconstruction/isOverscanRegion", kind="i", size=p)
            meta["is_overscan_region"] = mask.reshape(-1)[perm].reshape(shape).astype(bool)
        return MPIImage(data=data, fov=fov, center=center, metadata=meta)

    # -- summary ------------------------------------------------------------------------------
    def summary(self) -> dict:
        """What the reader sees, as JSON-ready values (the ``napari-mpi info`` output)."""
        out: dict = {"path": str(self.path), "kind": self.kind, "version": self.version}
        out["frames"] = self.num_frames
        out["background_frames"] = self.num_background_frames
        acq = None
        if self._f.has("acquisition/receiver/numSamplingPoints"):
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
                else self._reco_shape()[1]
            )
            shape, fov, center, _ = self._grid(group, voxels)
            out["grid_xyz"] = list(shape[::-1])
            out["fov_m_xyz"] = fov[::-1].tolist()
            out["center_m_xyz"] = center[::-1].tolist()
        if self.kind == "reconstruction":
            out["channels"] = self._reco_shape()[2]
        if acq is not None:
            out["sampling_points"] = acq.num_sampling_points
            out["bandwidth_hz"] = acq.bandwidth
            out["drive_frequencies_hz"] = acq.drive_frequencies.tolist()
            out["drive_strength_t"] = acq.drive_strength.tolist()
            out["gradient_t_per_m_xyz"] = None if acq.gradient is None else acq.gradient.tolist()
        f = self._f
        out["study"] = f.string("study/name")
        out["experiment"] = f.string("experiment/name")
        out["scanner"] = f.string("scanner/name") or f.string("scanner/model")
        out["topology"] = f.string("scanner/topology")
        return out


def _snr_from_background(signal: np.ndarray, background: np.ndarray) -> np.ndarray:
    """SNR per row: RMS of the background-corrected signal over the background's RMS deviation."""
    noise = background - background.mean(axis=0, keepdims=True)
    nb = background.shape[0]
    noise_rms = np.sqrt((np.abs(noise) ** 2).sum(axis=0) / max(nb - 1, 1))
    signal_rms = np.sqrt((np.abs(signal) ** 2).mean(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(noise_rms > 0, signal_rms / noise_rms, np.inf)
    return snr


def _select_frames(frames, total: int, path: Path) -> np.ndarray:
    """Turn a frame selection into 0-based indices, with clear errors."""
    if total == 0:
        raise ValueError(f"{path}: holds no foreground frames")
    if frames is None:
        return np.arange(total)
    if isinstance(frames, slice):
        idx = np.arange(total)[frames]
    else:
        idx = np.atleast_1d(np.asarray(frames))
        if idx.dtype.kind not in "iu":
            raise ValueError(f"frames: expected integer indices, got {idx.dtype}")
        idx = idx.astype(np.int64)
        idx = np.where(idx < 0, idx + total, idx)
    if idx.size == 0:
        raise ValueError(f"frames: the selection {frames!r} is empty ({path} has {total} frames)")
    if idx.min() < 0 or idx.max() >= total:
        raise ValueError(
            f"frames: {frames!r} out of range; {path} has {total} foreground frame(s) (0-based)"
        )
    return idx
