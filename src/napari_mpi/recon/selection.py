"""Frequency selection of an in-memory system matrix and alignment of spectra with its rows."""

from __future__ import annotations

import numpy as np

from ..system_matrix import SystemMatrix


def select_frequencies(
    sm: SystemMatrix,
    snr_threshold: float | None = None,
    min_frequency: float | None = None,
    max_frequency: float | None = None,
    channels: list[int] | None = None,
) -> SystemMatrix:
    """Rows of ``sm`` passing the same filters as :meth:`MDFFile.system_matrix`."""
    keep = np.ones(sm.num_rows, dtype=bool)
    if snr_threshold is not None:
        if sm.snr is None:
            raise ValueError("snr_threshold: this system matrix carries no SNR")
        keep &= sm.snr >= snr_threshold
    if min_frequency is not None:
        keep &= sm.frequencies >= min_frequency
    if max_frequency is not None:
        keep &= sm.frequencies <= max_frequency
    if channels is not None:
        keep &= np.isin(sm.channels, np.asarray(channels))
    if not keep.any():
        raise ValueError("the frequency selection leaves no rows")
    return sm.select_rows(keep)


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
