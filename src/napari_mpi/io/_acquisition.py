"""Reading and writing ``/acquisition``: drive field, receiver, gradient."""

from __future__ import annotations

import h5py
import numpy as np

from ..acquisition import Acquisition
from ._fields import FieldReader
from ._metadata import now, put
from .errors import MDFError

#: Plausibility bounds on declared sizes, checked before anything depends on them.
MAX_SAMPLING_POINTS = 2**26
MAX_RECEIVE_CHANNELS = 4096
MAX_DRIVE_CHANNELS = 64
#: Set in files written without acquisition settings (zeros stand in for the mandatory fields).
NO_ACQUISITION_FLAG = "_napari_mpi/noAcquisition"


def parse_gradient(f: FieldReader, g: np.ndarray) -> np.ndarray:
    """The 3 x 3 gradient matrix of the first period from any layout of ``acquisition/gradient``.

    Layouts: MDF 2.1's J x Y x 3 x 3 (also J x 3 x 3 and a bare 3 x 3), and the legacy
    diagonal layouts (3,), (1, 3) and J x 1 x 3, read as diag(gx, gy, gz).

    Returns
    -------
    ndarray, shape (3, 3)
        Row i, column j: dH_i / dx_j (T/m/mu0).
    """
    field = "acquisition/gradient"
    if g.ndim >= 2 and g.shape[-2:] == (3, 3) and g.ndim <= 4:
        matrix = g.reshape(-1, 3, 3)[0]
    elif g.size and g.shape[-1] == 3 and g.ndim <= 3 and (g.ndim < 3 or g.shape[1] == 1):
        matrix = np.diag(g.reshape(-1, 3)[0])
    else:
        raise f.error(
            field,
            f"expected J x Y x 3 x 3 values (or the legacy (1, 3) / J x 1 x 3), found {g.shape}",
        )
    if not np.all(np.isfinite(matrix)):
        raise f.error(field, f"expected finite values, found {matrix.tolist()}")
    return matrix


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
    dividers = f.array(f"{df}/divider", kind="i", ndim=(0, 1, 2))
    num_drive = dividers.shape[0] if dividers.ndim else 1
    if dividers.size == 0 or num_drive == 0 or dividers.size % num_drive:
        raise f.error(f"{df}/divider", f"expected D x F dividers, found shape {dividers.shape}")
    if num_drive > MAX_DRIVE_CHANNELS:
        raise f.error(
            f"{df}/divider",
            f"declares {num_drive} drive channels, more than the {MAX_DRIVE_CHANNELS} supported",
        )
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
        except (ValueError, IndexError):
            raise f.error(
                field,
                f"expected one value per drive channel ({num_drive}), found {value.shape}",
            ) from None

    gradient = None
    if f.has("acquisition/gradient"):
        gradient = parse_gradient(f, f.array("acquisition/gradient"))
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
    num_samples = f.number(f"{rx}/numSamplingPoints", integer=True)
    if num_samples > MAX_SAMPLING_POINTS:
        raise f.error(
            f"{rx}/numSamplingPoints",
            f"declares {num_samples} samples per period, more than the {MAX_SAMPLING_POINTS} "
            "supported",
        )
    num_channels = f.number(f"{rx}/numChannels", integer=True)
    if num_channels > MAX_RECEIVE_CHANNELS:
        raise f.error(
            f"{rx}/numChannels",
            f"declares {num_channels} receive channels, more than the {MAX_RECEIVE_CHANNELS} "
            "supported",
        )
    try:
        return Acquisition(
            base_frequency=f.number(f"{df}/baseFrequency"),
            dividers=dividers,
            drive_strength=per_drive_channel(f"{df}/strength", 0.0),
            drive_phase=per_drive_channel(f"{df}/phase", 0.0),
            num_sampling_points=num_samples,
            bandwidth=f.number(f"{rx}/bandwidth"),
            num_receive_channels=num_channels,
            gradient=gradient,
            num_periods=num_periods,
            num_averages=num_averages,
            waveform=waveform,
        )
    except ValueError as exc:
        if isinstance(exc, MDFError):
            raise
        raise f.error("acquisition", str(exc)) from None


def write_acquisition(
    h5: h5py.File, acq: Acquisition | None, num_frames: int, start_time: str | None = None
) -> None:
    """``/acquisition`` with its drive-field and receiver groups, in MDF 2.1.0's layouts.

    ``gradient`` is J x Y x 3 x 3 (Y = 1), ``strength`` and ``phase`` J x D x F, ``divider`` and
    ``waveform`` D x F (F = 1). Without an acquisition (a reconstruction from an unknown scan)
    the non-optional fields are still written, with zeros, and ``_napari_mpi/noAcquisition = 1``
    tells readers that they describe nothing.
    """
    start = start_time or now()
    if acq is None:
        put(h5, "acquisition/startTime", start)
        put(h5, "acquisition/numAverages", 1)
        put(h5, "acquisition/numFrames", int(num_frames))
        put(h5, "acquisition/numPeriodsPerFrame", 1)
        df, rx = "acquisition/drivefield", "acquisition/receiver"
        put(h5, f"{df}/numChannels", 1)
        put(h5, f"{df}/baseFrequency", 0.0)
        put(h5, f"{df}/cycle", 0.0)
        put(h5, f"{df}/divider", np.ones((1, 1), dtype=np.int64))
        put(h5, f"{df}/strength", np.zeros((1, 1, 1)))
        put(h5, f"{df}/phase", np.zeros((1, 1, 1)))
        put(h5, f"{df}/waveform", np.full((1, 1), "sine", dtype=object))
        put(h5, f"{rx}/numChannels", 1)
        put(h5, f"{rx}/bandwidth", 0.0)
        put(h5, f"{rx}/numSamplingPoints", 0)
        put(h5, f"{rx}/unit", "V")
        put(h5, NO_ACQUISITION_FLAG, True)
        return
    a = acq
    d, j = a.num_drive_channels, a.num_periods
    put(h5, "acquisition/startTime", start)
    put(h5, "acquisition/numAverages", a.num_averages)
    put(h5, "acquisition/numFrames", int(num_frames))
    put(h5, "acquisition/numPeriodsPerFrame", j)
    if a.gradient_matrix is not None:
        put(h5, "acquisition/gradient", np.tile(a.gradient_matrix, (j, 1, 1, 1)))
    df = "acquisition/drivefield"
    put(h5, f"{df}/numChannels", d)
    put(h5, f"{df}/baseFrequency", a.base_frequency)
    put(h5, f"{df}/divider", a.dividers.reshape(d, 1))
    put(h5, f"{df}/strength", np.tile(a.drive_strength.reshape(1, d, 1), (j, 1, 1)))
    put(h5, f"{df}/phase", np.tile(a.drive_phase.reshape(1, d, 1), (j, 1, 1)))
    put(h5, f"{df}/waveform", np.full((d, 1), a.waveform, dtype=object))
    put(h5, f"{df}/cycle", a.cycle)
    rx = "acquisition/receiver"
    put(h5, f"{rx}/numChannels", a.num_receive_channels)
    put(h5, f"{rx}/bandwidth", a.bandwidth)
    put(h5, f"{rx}/numSamplingPoints", a.num_sampling_points)
    put(h5, f"{rx}/unit", "V")
    put(h5, f"{rx}/dataConversionFactor", np.tile([1.0, 0.0], (a.num_receive_channels, 1)))
