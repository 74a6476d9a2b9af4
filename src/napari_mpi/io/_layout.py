"""Where the frames, periods, channels and samples of an MDF data array lie, and how to read them.

MDF stores the raw or processed signal of a file in one array whose axis order depends on the
format version and on flags:

=========================  ==============================  ===================================
file                       array                           axes (h5py / row-major order)
=========================  ==============================  ===================================
v2, frame axis slow        ``measurement/data``            N x J x C x K  (or W time samples)
v2, ``isFastFrameAxis``    ``measurement/data``            J x C x K x N
v1 measurement             ``measurement/dataFD``          N x C x K x 2
v1 measurement (time)      ``measurement/dataTD``          N x C x V
v1 calibration             ``calibration/dataFD``          C x K x N x 2
=========================  ==============================  ===================================

Complex values are native complex, an r/i compound, or a trailing axis of length 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from ..acquisition import Acquisition
from ._fields import FieldReader
from ._h5 import compound_to_complex, index_runs, is_complex_compound

#: Read at most this many bytes of a dataset at once when whole frames must be read.
CHUNK_BYTES = 16 * 2**20


@dataclass
class DataLayout:
    """How to index one MDF data array.

    Attributes
    ----------
    field : str
        HDF5 path of the array.
    ds : h5py.Dataset
        The open dataset.
    frame_axis, channel_axis, sample_axis : int
        Axis holding frames, receive channels and samples (frequencies or time points).
    period_axis : int or None
        Axis holding periods (patches), None for layouts without one.
    trailing_complex : bool
        Whether a last axis of length 2 holds real and imaginary parts.
    fourier : bool
        Whether samples are frequency bins (True) or time points (False).
    bins : ndarray of int
        rfft bin of each stored sample (frequency data only).
    """

    field: str
    ds: h5py.Dataset
    frame_axis: int
    channel_axis: int
    sample_axis: int
    period_axis: int | None
    trailing_complex: bool
    fourier: bool
    bins: np.ndarray | None = None
    num_sampling_points: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return self.ds.shape

    @property
    def num_frames(self) -> int:
        return int(self.shape[self.frame_axis])

    @property
    def num_channels(self) -> int:
        return int(self.shape[self.channel_axis])

    @property
    def num_periods(self) -> int:
        return 1 if self.period_axis is None else int(self.shape[self.period_axis])

    @property
    def num_samples(self) -> int:
        return int(self.shape[self.sample_axis])

    def _to_complex(self, block: np.ndarray) -> np.ndarray:
        if block.dtype.names is not None:
            return compound_to_complex(block)
        if self.trailing_complex:
            return block[..., 0] + 1j * block[..., 1]
        return block

    def read(
        self, period: int, channel: int, samples: slice, frames: slice | np.ndarray
    ) -> np.ndarray:
        """Read one (period, channel) block: returns (frames, samples), complex or real."""
        ndim = len(self.shape)
        idx: list[object] = [slice(None)] * ndim
        idx[self.frame_axis] = frames
        idx[self.channel_axis] = channel
        idx[self.sample_axis] = samples
        if self.period_axis is not None:
            idx[self.period_axis] = period
        block = self.ds[tuple(idx)]
        block = self._to_complex(np.asarray(block))
        if self.frame_axis > self.sample_axis:
            block = block.T
        return block

    def _frame_bytes(self, whole_frame: bool) -> int:
        """Bytes of one frame: all (period, channel, sample) values, or one channel's samples."""
        itemsize = self.ds.dtype.itemsize * (2 if self.trailing_complex else 1)
        if whole_frame:
            return max(1, int(np.prod(self.shape)) // max(self.num_frames, 1) * itemsize)
        return max(1, self.num_samples * itemsize)

    def frame_chunks(self, count: int, whole_frame: bool = False) -> list[np.ndarray]:
        """Split ``range(count)`` into chunks whose reads stay under CHUNK_BYTES."""
        size = max(1, CHUNK_BYTES // self._frame_bytes(whole_frame))
        return [np.arange(i, min(i + size, count)) for i in range(0, count, size)]

    def read_selection(
        self,
        periods: np.ndarray,
        channels: np.ndarray,
        positions: np.ndarray,
        frames: np.ndarray,
        conversion: np.ndarray | None,
        max_gap: int = 8,
    ) -> np.ndarray:
        """Read many rows for the given frames.

        Frame-slow frequency data are read in blocks of whole frames (contiguous on disk, far
        faster than strided hyperslabs); frame-fast data one (period, channel) at a time, in
        runs of neighbouring frequencies; time data in blocks of frames, Fourier transformed.
        Memory stays bounded by the output plus one block of at most ``CHUNK_BYTES``.

        Parameters
        ----------
        periods, channels : ndarray of int, shape (rows,)
            Period and receive channel of each row.
        positions : ndarray of int, shape (rows,)
            For frequency data the stored sample position of each row; for time data the rfft
            bin to compute.
        frames : ndarray of int
            Sorted, unique stored frame indices.
        conversion : ndarray, shape (channels, 2), optional
            ``(a_c, b_c)`` mapping raw values ``r`` to ``a_c * r + b_c``.

        Returns
        -------
        ndarray, shape (rows, frames), complex64
        """
        rows_total = periods.size
        out = np.empty((rows_total, frames.size), dtype=np.complex64)
        if frames.size == 0 or rows_total == 0:
            return out
        if conversion is None:
            scale, offset = np.ones(rows_total), np.zeros(rows_total)
        else:
            scale, offset = conversion[channels, 0], conversion[channels, 1]
        if self.fourier and self.frame_axis == 0:
            period_index = 0 if self.period_axis is None else periods
            for chunk in self.frame_chunks(frames.size, whole_frame=True):
                block = self._to_complex(np.asarray(self.ds[_as_selection(frames[chunk])]))
                if self.period_axis is None:  # (n, C, K)
                    picked = block[:, channels, positions]
                else:  # (n, J, C, K)
                    picked = block[:, period_index, channels, positions]
                out[:, chunk] = picked.T
        else:
            frame_sel = _as_selection(frames)
            keys = np.stack([periods, channels], axis=1)
            for j, c in np.unique(keys, axis=0):
                rows = np.flatnonzero((periods == j) & (channels == c))
                wanted = np.unique(positions[rows])
                lookup = np.searchsorted(wanted, positions[rows])
                if self.fourier:
                    block = np.empty((wanted.size, frames.size), dtype=np.complex64)
                    col = 0
                    for start, stop, take in index_runs(wanted, max_gap=max_gap):
                        part = self.read(int(j), int(c), slice(start, stop), frame_sel)
                        block[col : col + take.size] = part[:, take].T
                        col += take.size
                    out[rows] = block[lookup]
                else:
                    for chunk in self.frame_chunks(frames.size):
                        sel = _as_selection(frames[chunk])
                        signal = self.read(int(j), int(c), slice(None), sel).astype(np.float64)
                        spectrum = np.fft.rfft(signal, axis=1)[:, wanted]
                        out[np.ix_(rows, chunk)] = spectrum[:, lookup].T
        # dataConversionFactor: r -> a r + b. For spectra, a scales every bin and the constant
        # offset b only reaches the DC bin, as b * V.
        if conversion is not None:
            out *= scale[:, np.newaxis].astype(np.float32)
            bins = positions if not self.fourier else self.bins[positions]
            dc = (bins == 0) & (offset != 0)
            out[dc] += (offset[dc] * self.num_sampling_points)[:, np.newaxis]
        return out


def _as_selection(frames: np.ndarray) -> slice | np.ndarray:
    """A slice when the frames are contiguous (fast in HDF5), otherwise the index array."""
    if frames.size and frames[-1] - frames[0] + 1 == frames.size:
        start = int(frames[0])
        return slice(start, start + int(frames.size))
    return frames


def complex_kind(ds: h5py.Dataset) -> str:
    """'native', 'compound' or 'real' for a dataset's element type."""
    if ds.dtype.kind == "c":
        return "native"
    if is_complex_compound(ds.dtype):
        return "compound"
    return "real"


def build_layout(f: FieldReader, acq: Acquisition, *, is_v1: bool, kind: str) -> DataLayout:
    """Find the data array of a calibration or measurement and check it against the acquisition.

    Parameters
    ----------
    f : FieldReader
        The open file.
    acq : Acquisition
        Its acquisition settings (channels, sampling points, periods).
    is_v1 : bool
        Whether the file follows the legacy MDF 1.x layout.
    kind : str
        ``"calibration"`` or ``"measurement"``.

    Returns
    -------
    DataLayout

    Raises
    ------
    MDFError
        Naming the field whose shape, type or flags do not fit.
    """
    num_freq = acq.num_frequencies
    if is_v1:
        if kind == "calibration":
            field, axes, fourier = "calibration/dataFD", (2, 0, 1, None), True
        elif f.has("measurement/dataFD"):
            field, axes, fourier = "measurement/dataFD", (0, 1, 2, None), True
        elif f.has("measurement/dataTD"):
            field, axes, fourier = "measurement/dataTD", (0, 1, 2, None), False
        else:
            raise f.error("measurement/data", "this file holds no measurement data")
        ds = f.dataset(field)
        f.check_size(ds, field, whole_field=False)
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
        f.check_size(ds, field, whole_field=False)
        if f.flag("measurement/isSparsityTransformed"):
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
        if not is_v1 and f.flag("measurement/isFrequencySelection"):
            sel = f.array("measurement/frequencySelection", kind="i", ndim=(1,)) - 1
            if sel.size != layout.num_samples:
                raise f.error(
                    "measurement/frequencySelection",
                    f"has {sel.size} entries but {field} stores {layout.num_samples} frequencies",
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
    if layout.num_periods != acq.num_periods and not is_v1:
        raise f.error(
            field,
            f"has {layout.num_periods} period(s) per frame but the acquisition declares "
            f"{acq.num_periods}",
        )
    return layout
