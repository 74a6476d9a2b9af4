"""Reading measured signals: frame order, background frames, conversion, spectra aligned with a
system matrix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..system_matrix import SystemMatrix
from ._layout import DataLayout
from .errors import MDFError

if TYPE_CHECKING:
    from .mdf_reader import MDFFile


def background_mask(mdf: MDFFile, layout: DataLayout) -> np.ndarray:
    """``measurement/isBackgroundFrame`` as bool, shape (stored frames,); all False without it."""
    n = layout.num_frames
    field = "measurement/isBackgroundFrame"
    if mdf.is_v1 or not mdf._f.has(field):
        return np.zeros(n, dtype=bool)
    mask = mdf._f.array(field, kind="i", ndim=(1,)).astype(bool)
    if mask.size != n:
        raise mdf._f.error(field, f"expected {n} entries (one per frame), found {mask.size}")
    return mask


def conversion_factors(mdf: MDFFile, layout: DataLayout) -> np.ndarray | None:
    """``receiver/dataConversionFactor`` as (C, 2) rows ``(a_c, b_c)``, or None without it."""
    field = "acquisition/receiver/dataConversionFactor"
    if mdf.is_v1 or not mdf._f.has(field):
        return None
    value = mdf._f.array(field)
    c = layout.num_channels
    if value.shape == (c, 2):
        return value
    if value.shape == (2, c):
        return value.T
    if value.size == 2 and c == 1:
        return value.reshape(1, 2)
    raise mdf._f.error(field, f"expected C x 2 = ({c}, 2) values, found shape {value.shape}")


def transfer_function_values(
    mdf: MDFFile, layout: DataLayout, bins: np.ndarray, channels: np.ndarray
) -> np.ndarray:
    """``receiver/transferFunction`` at the given (channel, rfft bin) pairs, shape (rows,)."""
    field = "acquisition/receiver/transferFunction"
    if not mdf._f.has(field):
        raise mdf._f.error(
            field, "is missing, so the transfer-function correction cannot be applied"
        )
    tf = mdf._f.array(field, kind="c")
    c, num_freq = layout.num_channels, mdf.acquisition.num_frequencies
    if tf.shape == (num_freq, c) and tf.shape != (c, num_freq):
        tf = tf.T
    if tf.shape != (c, num_freq):
        raise mdf._f.error(field, f"expected C x L = ({c}, {num_freq}), found {tf.shape}")
    values = tf[channels, bins]
    if np.any(values == 0) or not np.all(np.isfinite(values)):
        raise mdf._f.error(field, "is zero or not finite at a selected frequency")
    return values


def acquisition_order(mdf: MDFFile, layout: DataLayout) -> np.ndarray:
    """Stored frame index of each acquired frame, in acquisition order."""
    n = layout.num_frames
    field = "measurement/framePermutation"
    if mdf.is_v1 or not mdf._f.flag("measurement/isFramePermutation"):
        return np.arange(n)
    perm = mdf._f.array(field, kind="i", ndim=(1,)) - 1
    if perm.size != n or not np.array_equal(np.sort(perm), np.arange(n)):
        raise mdf._f.error(field, f"expected a permutation of 1..{n} (1-based, one per frame)")
    # stored frame o holds acquired frame perm[o]
    return np.argsort(perm)


def read_measurements(
    mdf: MDFFile,
    system_matrix: SystemMatrix,
    frames: int | slice | list[int] | np.ndarray | None = None,
    background_correction: bool = True,
    average: bool = False,
    transfer_function_correction: bool | None = None,
) -> np.ndarray:
    """Spectra aligned row for row with a system matrix (see :meth:`MDFFile.measurements`)."""
    layout = mdf._require_data()
    acq = mdf.acquisition
    sm_acq = system_matrix.acquisition
    if sm_acq is not None:
        diffs = sm_acq.differences(acq)
        if diffs:
            raise MDFError(
                mdf.path,
                "acquisition",
                "does not match the calibration "
                f"({system_matrix.source or 'system matrix'}): " + "; ".join(diffs),
            )
    # map each system-matrix row to a stored sample of this file, by frequency in Hz
    row_bins = np.rint(system_matrix.frequencies * acq.cycle).astype(np.int64)
    off_grid = np.abs(row_bins / acq.cycle - system_matrix.frequencies) > 1e-6 * max(
        1.0, float(np.max(system_matrix.frequencies, initial=1.0))
    )
    stored_bins = mdf.stored_frequency_indices
    in_range = (row_bins >= 0) & (row_bins < acq.num_frequencies) & ~off_grid
    if stored_bins.size:
        where = np.clip(np.searchsorted(stored_bins, row_bins), 0, stored_bins.size - 1)
        pos = np.where(in_range & (stored_bins[where] == row_bins), where, -1)
    else:
        pos = np.full(row_bins.shape, -1, dtype=np.int64)
    missing = pos < 0
    if np.any(missing):
        freqs = np.unique(system_matrix.frequencies[missing])
        shown = ", ".join(f"{f / 1e3:.3f} kHz" for f in freqs[:5])
        raise MDFError(
            mdf.path,
            "measurement/frequencySelection",
            f"lacks {freqs.size} frequenc{'y' if freqs.size == 1 else 'ies'} that the "
            f"system matrix uses ({shown}{', ...' if freqs.size > 5 else ''})",
        )
    bad_channel = system_matrix.channels >= layout.num_channels
    if np.any(bad_channel):
        raise MDFError(
            mdf.path,
            "acquisition/receiver/numChannels",
            f"has {layout.num_channels} channel(s) but the system matrix uses channel "
            f"{int(system_matrix.channels.max())}",
        )
    if np.any(system_matrix.periods >= layout.num_periods):
        raise MDFError(
            mdf.path,
            "acquisition/numPeriodsPerFrame",
            f"has {layout.num_periods} period(s) but the system matrix uses period "
            f"{int(system_matrix.periods.max())}",
        )
    bg_mask = background_mask(mdf, layout)
    order = acquisition_order(mdf, layout)
    fg_stored = order[~bg_mask[order]]
    bg_stored = np.flatnonzero(bg_mask)
    selected = select_frames(frames, fg_stored.size, mdf.path)
    wanted = fg_stored[selected]
    bg_already = mdf._f.flag("measurement/isBackgroundCorrected", default=False)
    subtract_bg = background_correction and bg_stored.size > 0 and not bg_already
    read_frames = np.unique(np.concatenate([wanted, bg_stored if subtract_bg else []]))
    read_frames = read_frames.astype(np.int64)
    positions = pos if layout.fourier else stored_bins[pos]
    mdf._f.check_memory(
        read_frames.size * system_matrix.num_rows * 8.0 * 2,
        layout.field,
        f"the measurements ({read_frames.size} frames x {system_matrix.num_rows} rows, "
        "complex64, with a working copy)",
        "select fewer frames (frames=...) or fewer system-matrix rows",
    )
    with mdf._f.guard(layout.field):
        data = layout.read_selection(
            system_matrix.periods,
            system_matrix.channels,
            positions,
            read_frames,
            conversion_factors(mdf, layout),
        )
    data = data.T  # (frames, rows)
    out = data[np.searchsorted(read_frames, wanted)]
    if subtract_bg:
        bg = data[np.searchsorted(read_frames, bg_stored)]
        out = out - bg.mean(axis=0, keepdims=True)
    if transfer_function_correction is None:
        transfer_function_correction = system_matrix.transfer_function_corrected
    if transfer_function_correction and not mdf._f.flag("measurement/isTransferFunctionCorrected"):
        out = out / transfer_function_values(mdf, layout, row_bins, system_matrix.channels)
    if average:
        out = out.mean(axis=0, keepdims=True)
    return out.astype(np.complex64)


def read_spectra(
    mdf: MDFFile,
    frames: int | slice | list[int] | np.ndarray | None = None,
    background_correction: bool = False,
    include_background: bool = False,
) -> np.ndarray:
    """Every stored frequency of the selected frames (see :meth:`MDFFile.spectra`)."""
    layout = mdf._require_data()
    bg_mask = background_mask(mdf, layout)
    order = acquisition_order(mdf, layout)
    pool = order if include_background else order[~bg_mask[order]]
    wanted = pool[select_frames(frames, pool.size, mdf.path)]
    bins = mdf.stored_frequency_indices
    mdf._f.check_memory(
        layout.num_periods * layout.num_channels * bins.size * 24.0,
        layout.field,
        "the index arrays of every (period, channel, frequency)",
        "the file declares an implausible number of periods, channels or frequencies",
    )
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
        and not mdf._f.flag("measurement/isBackgroundCorrected")
    )
    read_frames = np.unique(np.concatenate([wanted, bg_stored if subtract else []]))
    read_frames = read_frames.astype(np.int64)
    positions = kk if layout.fourier else bins[kk]
    mdf._f.check_memory(
        read_frames.size * jj.size * 8.0 * 2,
        layout.field,
        f"the spectra ({read_frames.size} frames x {jj.size} (period, channel, frequency) "
        "values, complex64, with a working copy)",
        "select fewer frames (frames=...)",
    )
    with mdf._f.guard(layout.field):
        data = layout.read_selection(
            jj, cc, positions, read_frames, conversion_factors(mdf, layout)
        )
    data = data.T  # (frames, rows)
    out = data[np.searchsorted(read_frames, wanted)]
    if subtract:
        out = out - data[np.searchsorted(read_frames, bg_stored)].mean(axis=0, keepdims=True)
    shape = (wanted.size, layout.num_periods, layout.num_channels, bins.size)
    return out.reshape(shape).astype(np.complex64)


def select_frames(frames, total: int, path: Path) -> np.ndarray:
    """Turn a frame selection into 0-based indices, with clear errors."""
    if total == 0:
        raise MDFError(
            path, "measurement/isBackgroundFrame", "marks every frame as background: no foreground"
        )
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
