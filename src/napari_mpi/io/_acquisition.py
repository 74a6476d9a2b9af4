"""Reading the ``/acquisition`` group of an MDF file (drive field, receiver, gradient)."""

from __future__ import annotations

import numpy as np

from ..acquisition import Acquisition
from ._fields import FieldReader
from .errors import MDFError


def read_acquisition(f: FieldReader, is_v1: bool) -> Acquisition:
    """The drive-field and receiver settings of an open MDF file.

    Parameters
    ----------
    f : FieldReader
        The open file.
    is_v1 : bool
        Whether the file follows the legacy MDF 1.x layout.

    Returns
    -------
    Acquisition

    Raises
    ------
    MDFError
        Naming the field when a required field is missing or malformed.
    """
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
    if is_v1:
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
