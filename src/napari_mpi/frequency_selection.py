"""One frequency-selection object: which (channel, frequency) rows of a calibration to use.

:class:`FrequencySelection` holds the filters (SNR threshold, frequency band, receive channels)
and :meth:`FrequencySelection.mask` is the one implementation of them: the MDF reader
(:meth:`napari_mpi.MDFFile.system_matrix`), :func:`napari_mpi.recon.selection.select_frequencies`,
the CLI (``napari-mpi reconstruct``) and the Reconstruction widget all build one and call it.

Boundaries are inclusive: a row whose SNR equals ``snr_threshold`` is kept, and so is a row at
exactly ``min_frequency`` or ``max_frequency``.

``snr_threshold="auto"`` (the default of :func:`napari_mpi.reconstruct`, the CLI and the
Reconstruction widget) keeps the rows whose calibration SNR is at least
:data:`AUTO_SNR_THRESHOLD`, i.e. whose signal stands clearly above the calibration noise; a
calibration without SNR keeps every row. Measured on the ``preclinical-2d`` example and the
two-points phantom (``benchmarks/bench_defaults.py``): the energy-weighted solvers do as well
with every row as with SNR >= 2..5, and rows below SNR 2 are noise in a measured calibration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: ``snr_threshold="auto"``: keep rows whose calibration SNR is at least this value
AUTO_SNR_THRESHOLD = 2.0

_LEGACY_KEYS = ("snr_threshold", "min_frequency", "max_frequency", "channels")


@dataclass(frozen=True)
class FrequencySelection:
    """Which rows of a system matrix to use.

    Parameters
    ----------
    snr_threshold : float, "auto" or None
        Keep rows whose calibration SNR is >= this value (the SNR is the file's
        ``calibration/snr`` or, without it, estimated from background frames). "auto":
        :data:`AUTO_SNR_THRESHOLD` where the calibration has an SNR, every row where it has
        none. None: no SNR filter.
    min_frequency, max_frequency : float or None
        Keep rows whose frequency lies in this closed band (Hz).
    channels : tuple of int or None
        Receive channels to keep (0-based); None keeps every channel.

    Examples
    --------
    >>> sel = FrequencySelection(snr_threshold=3, min_frequency=80e3, channels=(0, 1))
    >>> sel.mask(np.array([70e3, 90e3, 90e3]), np.array([0, 0, 2]), np.array([5.0, 3.0, 9.0]))
    array([False,  True, False])
    """

    snr_threshold: float | str | None = None
    min_frequency: float | None = None
    max_frequency: float | None = None
    channels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        thr = self.snr_threshold
        if isinstance(thr, str):
            if thr.strip().lower() != "auto":
                try:
                    thr = float(thr)
                except ValueError:
                    raise ValueError(
                        f"snr_threshold: expected a number, 'auto' or None, got {thr!r}"
                    ) from None
            else:
                thr = "auto"
        elif thr is not None:
            thr = _finite("snr_threshold", thr)
        object.__setattr__(self, "snr_threshold", thr)
        for name in ("min_frequency", "max_frequency"):
            value = getattr(self, name)
            if value is not None:
                value = _finite(name, value)
                if value < 0:
                    raise ValueError(f"{name}: expected a frequency >= 0 Hz, got {value}")
                object.__setattr__(self, name, value)
        lo, hi = self.min_frequency, self.max_frequency
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(
                f"min_frequency ({lo:g} Hz) is above max_frequency ({hi:g} Hz): the band is empty"
            )
        if self.channels is not None:
            chans = np.atleast_1d(np.asarray(self.channels))
            if chans.size == 0:
                raise ValueError("channels: an empty list keeps no rows; pass None for all")
            if not np.issubdtype(chans.dtype, np.integer):
                if not np.all(np.mod(chans.astype(float), 1) == 0):
                    raise ValueError(f"channels: expected integers, got {self.channels!r}")
            chans = chans.astype(np.int64)
            if np.any(chans < 0):
                raise ValueError(
                    f"channels: {chans[chans < 0].tolist()} out of range (0-based channel numbers)"
                )
            object.__setattr__(self, "channels", tuple(int(c) for c in chans))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def coerce(
        cls, selection: FrequencySelection | dict | str | None = None, **legacy: Any
    ) -> FrequencySelection:
        """A selection from a :class:`FrequencySelection`, a dict, "auto", None (select
        nothing out) or the old keyword arguments (``snr_threshold=``, ``min_frequency=``,
        ``max_frequency=``, ``channels=``), which keep working; both at once is refused."""
        given = {k: v for k, v in legacy.items() if v is not None}
        unknown = sorted(set(given) - set(_LEGACY_KEYS))
        if unknown:
            raise TypeError(f"unknown frequency-selection argument(s) {unknown}")
        if selection is not None and given:
            raise ValueError(
                f"pass either selection= or {sorted(given)}, not both (the selection object "
                "holds every filter)"
            )
        if isinstance(selection, FrequencySelection):
            return selection
        if isinstance(selection, str):
            if selection.strip().lower() != "auto":
                raise ValueError(
                    f"selection: expected a FrequencySelection or 'auto', got {selection!r}"
                )
            return cls(snr_threshold="auto")
        if isinstance(selection, dict):
            given = dict(selection)
            unknown = sorted(set(given) - set(_LEGACY_KEYS))
            if unknown:
                raise ValueError(
                    f"selection: unknown key(s) {unknown}; expected {list(_LEGACY_KEYS)}"
                )
        elif selection is not None:
            raise TypeError(
                f"selection: expected a FrequencySelection, got {type(selection).__name__}"
            )
        if "channels" in given and given["channels"] is not None:
            given["channels"] = tuple(np.atleast_1d(np.asarray(given["channels"])).tolist())
        return cls(**given)

    # -- properties ---------------------------------------------------------------------------
    @property
    def is_empty(self) -> bool:
        """True when no filter is set (every row is kept)."""
        return all(getattr(self, k) is None for k in _LEGACY_KEYS)

    @property
    def needs_snr(self) -> bool:
        """True when the rows' SNR is needed."""
        return self.snr_threshold is not None

    def to_dict(self) -> dict:
        """The filters as a plain dict (JSON-friendly)."""
        out = asdict(self)
        if out["channels"] is not None:
            out["channels"] = list(out["channels"])
        return out

    def describe(self) -> str:
        """One line for messages: the filters that are set."""
        parts = [f"{k}={v}" for k, v in self.to_dict().items() if v is not None]
        return ", ".join(parts) if parts else "no frequency selection"

    def resolve_threshold(self, snr: np.ndarray | None = None) -> float | None:
        """The SNR threshold as a number ("auto": :data:`AUTO_SNR_THRESHOLD`, or None when
        there is no ``snr`` to compare with)."""
        if self.snr_threshold != "auto":
            return self.snr_threshold
        return None if snr is None else AUTO_SNR_THRESHOLD

    # -- the one filter -----------------------------------------------------------------------
    def band_mask(
        self,
        frequencies: np.ndarray,
        channels: np.ndarray,
        num_channels: int | None = None,
        source: str = "",
    ) -> np.ndarray:
        """Rows passing the channel and frequency-band filters (everything but the SNR).

        Parameters
        ----------
        frequencies : ndarray, shape (rows,)
            Frequency of each row (Hz).
        channels : ndarray of int, shape (rows,)
            Receive channel of each row (0-based).
        num_channels : int, optional
            Number of receive channels; channels outside 0..num_channels-1 are refused.
        source : str
            Name for messages (a file path).

        Returns
        -------
        ndarray of bool, shape (rows,)
        """
        frequencies = np.asarray(frequencies, dtype=np.float64)
        keep = np.ones(frequencies.shape, dtype=bool)
        if self.channels is not None:
            wanted = np.asarray(self.channels, dtype=np.int64)
            if num_channels is not None:
                bad = wanted[wanted >= num_channels]
                if bad.size:
                    raise ValueError(
                        f"{_prefix(source)}channels: {bad.tolist()} out of range; there are "
                        f"{num_channels} receive channel(s) (0-based)"
                    )
            keep &= np.isin(np.asarray(channels), wanted)
        if self.min_frequency is not None:
            keep &= frequencies >= self.min_frequency
        if self.max_frequency is not None:
            keep &= frequencies <= self.max_frequency
        return keep

    def snr_mask(self, snr: np.ndarray | None, source: str = "") -> np.ndarray | None:
        """Rows whose SNR is >= the threshold (kept when equal), or None without an SNR filter.

        With ``snr_threshold`` a number and no ``snr``, ValueError; with "auto" and no
        ``snr``, None (the filter is skipped).
        """
        if self.snr_threshold is None:
            return None
        if snr is None:
            if self.snr_threshold == "auto":
                return None
            raise ValueError(
                f"{_prefix(source)}snr_threshold: the calibration carries no SNR to compare with"
            )
        snr = np.asarray(snr, dtype=np.float64)
        return snr >= self.resolve_threshold(snr)

    def mask(
        self,
        frequencies: np.ndarray,
        channels: np.ndarray,
        snr: np.ndarray | None = None,
        num_channels: int | None = None,
        source: str = "",
    ) -> np.ndarray:
        """Rows passing every filter: :meth:`band_mask` and :meth:`snr_mask` together.

        ``snr`` (shape (rows,)) is required when ``snr_threshold`` is a number.
        """
        keep = self.band_mask(frequencies, channels, num_channels, source)
        by_snr = self.snr_mask(snr, source)
        return keep if by_snr is None else keep & by_snr


def _prefix(source: str) -> str:
    return f"{source}: " if source else ""


def _finite(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not np.isfinite(out):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return out


#: select every row (the reader's default)
ALL_ROWS = FrequencySelection()
