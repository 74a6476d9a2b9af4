"""Reading a calibration: the system matrix with frequency selection, stored or estimated SNR."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..frequency_selection import FrequencySelection
from ..system_matrix import SystemMatrix
from ._grid import read_grid
from ._layout import DataLayout
from ._measurement import (
    background_mask,
    conversion_factors,
    transfer_function_values,
)
from .errors import MDFError

if TYPE_CHECKING:
    from .mdf_reader import MDFFile


def read_stored_snr(mdf: MDFFile, layout: DataLayout) -> np.ndarray | None:
    """calibration/snr as (J, C, K) over stored frequencies, or None."""
    f = mdf._f
    field = "calibration/snrFD" if mdf.is_v1 else "calibration/snr"
    if not f.has(field):
        return None
    snr = f.array(field)
    j, c, k = layout.num_periods, layout.num_channels, layout.num_samples
    if not layout.fourier:
        k = mdf.acquisition.num_frequencies
    if snr.size == j * c * k:
        return snr.reshape(j, c, k)
    if mdf.is_v1 and snr.shape == (k, c):
        return snr.T.reshape(1, c, k)
    raise f.error(field, f"expected J x C x K = ({j}, {c}, {k}) values, found {snr.shape}")


def read_system_matrix(
    mdf: MDFFile,
    selection: FrequencySelection,
    background_correction: bool = True,
    transfer_function_correction: bool = False,
) -> SystemMatrix:
    """A calibration's system matrix, frequency-selected (see :meth:`MDFFile.system_matrix`).

    The rows are filtered by ``selection`` (:meth:`FrequencySelection.band_mask` before any
    data is read, :meth:`FrequencySelection.snr_mask` on the stored or estimated SNR).
    """
    if mdf.kind != "calibration":
        raise mdf._f.error(None, f"is a {mdf.kind} file, not a calibration")
    layout = mdf._data_layout()
    acq = mdf.acquisition
    bg_mask = background_mask(mdf, layout)
    fg_idx, bg_idx = np.flatnonzero(~bg_mask), np.flatnonzero(bg_mask)
    if fg_idx.size == 0:
        raise mdf._f.error("measurement/isBackgroundFrame", "marks every frame as background")
    stored_bins = mdf.stored_frequency_indices
    num_k = stored_bins.size
    candidates = layout.num_periods * layout.num_channels * num_k
    mdf._f.check_memory(
        candidates * 64.0,
        layout.field,
        f"the row bookkeeping of {candidates} candidate rows",
        "the file declares an implausible number of periods, channels or frequencies",
    )
    # candidate rows: every (period, channel, stored frequency)
    jj, cc, kk = np.meshgrid(
        np.arange(layout.num_periods),
        np.arange(layout.num_channels),
        np.arange(num_k),
        indexing="ij",
    )
    jj, cc, kk = jj.ravel(), cc.ravel(), kk.ravel()
    freqs = stored_bins[kk] / acq.cycle  # no array over every possible bin
    keep = selection.band_mask(freqs, cc, layout.num_channels, str(mdf.path))
    bg_already = mdf._f.flag("measurement/isBackgroundCorrected", default=mdf.is_v1)
    subtract_bg = background_correction and bg_idx.size > 0 and not bg_already

    stored_snr = read_stored_snr(mdf, layout)
    snr = None if stored_snr is None else stored_snr[jj, cc, kk]
    positions = kk if layout.fourier else stored_bins[kk]
    conversion = conversion_factors(mdf, layout)
    threshold = selection.snr_threshold
    keeps_all = isinstance(threshold, float) and threshold <= 0  # every SNR is >= 0
    if (
        snr is None
        and selection.needs_snr
        and not keeps_all
        and (bg_idx.size >= 2 or threshold != "auto")
    ):
        if bg_idx.size < 2:
            raise mdf._f.error(
                "calibration/snr",
                "is missing and the file has fewer than 2 background frames to estimate "
                "it from, so snr_threshold cannot be applied",
            )
        snr = np.zeros(jj.size)
        cand = np.flatnonzero(keep)
        snr[cand] = estimate_snr(
            mdf, layout, jj[cand], cc[cand], positions[cand], fg_idx, bg_idx, conversion
        )
    by_snr = None if snr is None and keeps_all else selection.snr_mask(snr, str(mdf.path))
    if by_snr is not None:
        keep &= by_snr
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise MDFError(
            mdf.path, None, f"the frequency selection ({selection.describe()}) leaves no rows"
        )
    all_frames = np.arange(layout.num_frames)
    mdf._f.check_memory(
        rows.size * layout.num_frames * 8.0 * 2,
        layout.field,
        f"the system matrix ({rows.size} rows x {layout.num_frames} frames, complex64, with its "
        "working copy)",
        "select fewer rows (min_frequency/max_frequency, snr_threshold, channels)",
    )
    with mdf._f.guard(layout.field):
        data = layout.read_selection(jj[rows], cc[rows], positions[rows], all_frames, conversion)
    bins = stored_bins[kk[rows]]
    tf_done = mdf._f.flag("measurement/isTransferFunctionCorrected")
    if transfer_function_correction and not tf_done:
        data /= transfer_function_values(mdf, layout, bins, cc[rows])[:, np.newaxis]
    # data is (rows, frames); keep background frames apart, then drop them
    bg = data[:, bg_idx].T if bg_idx.size else None
    fg = data if bg_idx.size == 0 else data[:, fg_idx]
    del data
    if subtract_bg:
        fg -= bg.mean(axis=0)[:, np.newaxis]
    if snr is None and bg_idx.size >= 2:
        bg_mean = bg.mean(axis=0)[:, np.newaxis]
        snr_rows = snr_from_background((fg if subtract_bg else fg - bg_mean).T, bg)
    else:
        snr_rows = None if snr is None else snr[rows]
    group = "calibration"
    shape, fov, center, perm = read_grid(mdf._f, group, fg_idx.size)
    matrix = fg if np.array_equal(perm, np.arange(perm.size)) else fg[:, perm]
    try:
        return SystemMatrix(
            matrix=matrix,
            channels=cc[rows],
            frequency_indices=bins,
            frequencies=bins / acq.cycle,
            periods=jj[rows],
            grid_shape=shape,
            fov=fov,
            center=center,
            snr=snr_rows,
            acquisition=acq,
            background=bg,
            background_corrected=bool(subtract_bg or bg_already),
            transfer_function_corrected=bool(transfer_function_correction or tf_done),
            source=str(mdf.path),
            metadata={
                "calibration_method": mdf._f.string("calibration/method", default=None),
                "mdf_version": mdf.version,
                "mdf_groups": provenance(mdf),
                **({} if selection.is_empty else {"frequency_selection": selection.to_dict()}),
            },
        )
    except ValueError as exc:
        if isinstance(exc, MDFError):
            raise
        raise MDFError(mdf.path, "calibration", str(exc)) from None


def provenance(mdf: MDFFile) -> dict:
    """The study, experiment, tracer and scanner groups and the acquisition start time, so that
    a writer can carry them over unchanged."""
    meta = mdf.metadata
    groups = {g: dict(meta.get(g) or {}) for g in ("study", "experiment", "tracer", "scanner")}
    start = (meta.get("acquisition") or {}).get("startTime")
    if isinstance(start, str):
        groups["acquisition"] = {"startTime": start}
    return groups


def estimate_snr(
    mdf: MDFFile, layout: DataLayout, jj, cc, positions, fg_idx, bg_idx, conversion
) -> np.ndarray:
    """Per-row SNR from background frames, reading one (period, channel) at a time."""
    out = np.empty(jj.size)
    frames = np.arange(layout.num_frames)
    keys = np.stack([jj, cc], axis=1)
    for j, c in np.unique(keys, axis=0):
        rows = np.flatnonzero((jj == j) & (cc == c))
        mdf._f.check_memory(
            rows.size * frames.size * 8.0 * 2,
            layout.field,
            f"estimating the SNR of {rows.size} rows over {frames.size} frames",
            "select fewer rows (min_frequency/max_frequency, channels) before the SNR threshold",
        )
        with mdf._f.guard(layout.field):
            data = layout.read_selection(
                jj[rows], cc[rows], positions[rows], frames, conversion, max_gap=10**9
            )
        bg = data[:, bg_idx].T
        out[rows] = snr_from_background(data[:, fg_idx].T - bg.mean(axis=0), bg)
    return out


def snr_from_background(signal: np.ndarray, background: np.ndarray) -> np.ndarray:
    """SNR per row: RMS of the background-corrected signal over the background's RMS deviation."""
    noise = background - background.mean(axis=0, keepdims=True)
    nb = background.shape[0]
    noise_rms = np.sqrt((np.abs(noise) ** 2).sum(axis=0) / max(nb - 1, 1))
    signal_rms = np.sqrt((np.abs(signal) ** 2).mean(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(noise_rms > 0, signal_rms / noise_rms, np.inf)
    return snr
