"""Frequency selection of an in-memory system matrix and alignment of spectra with its rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..frequency_selection import FrequencySelection
from ..system_matrix import SystemMatrix
from .operators import cached


def select_frequencies(
    sm: SystemMatrix,
    selection: FrequencySelection | dict | str | None = None,
    *,
    snr_threshold: float | str | None = None,
    min_frequency: float | None = None,
    max_frequency: float | None = None,
    channels: list[int] | None = None,
) -> SystemMatrix:
    """Rows of ``sm`` passing a :class:`~napari_mpi.FrequencySelection`.

    The filters are those of :meth:`MDFFile.system_matrix` (the same implementation,
    :meth:`FrequencySelection.mask`); a row exactly at the SNR threshold or at a band edge is
    kept. The old keyword arguments (``snr_threshold=``, ``min_frequency=``, ...) keep working.
    The selection is recorded in the result's ``metadata["frequency_selection"]``.
    """
    if isinstance(selection, (int, float, np.number)) and not isinstance(selection, bool):
        selection, snr_threshold = None, selection  # the old positional snr_threshold
    sel = FrequencySelection.coerce(
        selection,
        snr_threshold=snr_threshold,
        min_frequency=min_frequency,
        max_frequency=max_frequency,
        channels=channels,
    )
    if sel.is_empty:
        return sm
    out = sm.select_rows(selection_mask(sm, sel))
    out.metadata["frequency_selection"] = sel.to_dict()
    return out


def selection_mask(sm: SystemMatrix, selection: FrequencySelection) -> np.ndarray:
    """Boolean mask (rows,) of the rows of ``sm`` that ``selection`` keeps; ValueError when it
    keeps none (naming the selection)."""
    if selection.snr_threshold is not None and selection.snr_threshold != "auto" and sm.snr is None:
        raise ValueError("snr_threshold: this system matrix carries no SNR")
    acq = sm.acquisition
    num_channels = None if acq is None else int(acq.num_receive_channels)
    keep = selection.mask(sm.frequencies, sm.channels, sm.snr, num_channels, sm.source or "")
    if not keep.any():
        raise ValueError(f"the frequency selection ({selection.describe()}) leaves no rows")
    return keep


def apply_selection(
    sm: SystemMatrix, measurements: np.ndarray, selection: FrequencySelection
) -> tuple[SystemMatrix, np.ndarray]:
    """``sm`` and measurements (frames, rows) restricted to the rows ``selection`` keeps.

    An "auto" SNR threshold applies only to a system matrix not selected by SNR yet
    (``metadata["frequency_selection"]``, recorded by the reader and by
    :func:`select_frequencies`): an SNR threshold the user chose is never overridden.

    The selected system matrix is cached with ``sm`` (so its precomputations are reused when
    the same selection comes again) and records the selection in ``metadata``.
    """
    chosen = sm.metadata.get("frequency_selection") or {}
    if selection.snr_threshold == "auto" and chosen.get("snr_threshold") is not None:
        # "auto" never overrides an SNR threshold the calibration was selected with
        selection = replace(selection, snr_threshold=None)
    if selection.is_empty:
        return sm, measurements
    keep = selection_mask(sm, selection)
    if keep.all():
        return sm, measurements

    def build() -> SystemMatrix:
        sub = sm.select_rows(keep)
        sub.metadata["frequency_selection"] = selection.to_dict()
        return sub

    sub = cached(sm, ("frequency-selection", tuple(np.flatnonzero(keep).tolist())), build)
    u = np.asarray(measurements)
    if u.ndim >= 1 and u.shape[-1] == sm.num_rows:
        u = u[..., keep]
    return sub, u


def align_spectra(
    spectra: np.ndarray, frequencies: np.ndarray, sm: SystemMatrix, rtol: float = 1e-6
) -> np.ndarray:
    """Pick, for each row of ``sm``, the matching (channel, frequency) of ``spectra``.

    Parameters
    ----------
    spectra : ndarray, shape (frames, channels, K)
        Measured spectra.
    frequencies : ndarray, shape (K,)
        Frequency of each of the K bins (Hz).

    Returns
    -------
    ndarray, shape (frames, rows), complex64
    """
    spectra = np.asarray(spectra)
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if spectra.ndim != 3 or spectra.shape[2] != frequencies.size:
        raise ValueError(
            f"spectra must be (frames, channels, {frequencies.size}), got {spectra.shape}"
        )
    order = np.argsort(frequencies)
    pos = np.searchsorted(frequencies[order], sm.frequencies)
    pos = np.clip(pos, 0, frequencies.size - 1)
    idx = order[pos]
    scale = np.maximum(np.abs(sm.frequencies), 1.0)
    missing = np.abs(frequencies[idx] - sm.frequencies) > rtol * scale
    if np.any(missing) or np.any(sm.channels >= spectra.shape[1]):
        n = int(missing.sum())
        raise ValueError(
            f"the measurement lacks {n} frequenc{'y' if n == 1 else 'ies'} or channels that the "
            "system matrix uses"
        )
    return spectra[:, sm.channels, idx].astype(np.complex64)
