"""Reading a reconstruction: ``reconstruction/data`` (Q x P x S) with its grid."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from ..image import MPIImage
from ._calibration import provenance
from ._fields import FieldReader
from ._grid import read_grid
from ._h5 import compound_to_complex
from ._layout import complex_kind
from .errors import MDFError

if TYPE_CHECKING:
    from .mdf_reader import MDFFile

#: where :func:`~napari_mpi.io.write_reconstruction` keeps an image's own metadata
IMAGE_METADATA = "_napari_mpi/image"


def reco_shape(f: FieldReader) -> tuple[int, int, int]:
    """(frames Q, voxels P, channels S) of ``reconstruction/data``."""
    ds = f.dataset("reconstruction/data")
    shape = ds.shape
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1]), 1
    if len(shape) == 1:
        return 1, int(shape[0]), 1
    raise f.error(
        "reconstruction/data", f"expected Q x P x S (frames x voxels x channels), found {shape}"
    )


def read_image(mdf: MDFFile, channel: int = 0) -> MPIImage:
    """A reconstruction as an :class:`MPIImage` (see :meth:`MDFFile.image`)."""
    if mdf.kind != "reconstruction":
        raise mdf._f.error(None, f"is a {mdf.kind} file, not a reconstruction")
    q, p, s = reco_shape(mdf._f)
    if not 0 <= channel < s:
        raise ValueError(f"channel: {channel} out of range; {mdf.path} has {s} channel(s)")
    ds = mdf._f.dataset("reconstruction/data")
    kind = complex_kind(ds)
    if kind == "real" and ds.dtype.kind not in "iufb":
        raise mdf._f.error("reconstruction/data", f"expected numbers, found {ds.dtype}")
    mdf._f.check_size(ds, "reconstruction/data", whole_field=False)
    mdf._f.check_memory(
        float(q) * p * s * ds.dtype.itemsize * 2,
        "reconstruction/data",
        f"the reconstruction ({q} frames x {p} voxels x {s} channels)",
        "read it with h5py in parts",
    )
    with mdf._f.guard("reconstruction/data"):
        raw = np.asarray(ds[()]).reshape(q, p, s)[:, :, channel]
    if raw.dtype.names is not None:
        raw = compound_to_complex(raw)
    if np.iscomplexobj(raw):
        raw = raw.real
    shape, fov, center, perm = read_grid(mdf._f, "reconstruction", p)
    data = raw[:, perm].reshape((q, *shape)).astype(np.float32)
    meta = {
        "source": str(mdf.path),
        "mdf_version": mdf.version,
        "channel": channel,
        "mdf_groups": provenance(mdf),
    }
    card = degradation_card(mdf._f)
    if card is not None:
        meta["degradation"] = card
    if mdf._f.has("reconstruction/isOverscanRegion"):
        mask = mdf._f.array("reconstruction/isOverscanRegion", kind="i", size=p)
        meta["is_overscan_region"] = mask.reshape(-1)[perm].reshape(shape).astype(bool)
    try:
        return MPIImage(data=data, fov=fov, center=center, metadata=meta)
    except ValueError as exc:
        raise MDFError(mdf.path, "reconstruction", str(exc)) from None


def degradation_card(f: FieldReader) -> dict | None:
    """The degradation card of an image this package wrote, for enhancement methods' PSF.

    ``_napari_mpi/image/degradation`` (JSON text of
    :meth:`~napari_mpi.enhance.Degradation.to_dict`, written for ``Degradation.apply`` output)
    or, failing that, a card made from a layered scan's own parameters (``scan_model``,
    ``scan_plane_gradient_t_per_m``, ``z_gradient_t_per_m``, ``z_step_m`` (absent: one layer
    per voxel), ``particle_diameter_m``, ``snr_db`` (absent: no noise), written by
    ``layered_scan``). None when the file has neither; the card is optional metadata, so one
    that cannot be read is None too (reading the image never fails on it; its values are
    checked by whoever uses it).
    """
    try:
        text = f.string(f"{IMAGE_METADATA}/degradation")
        if text is not None:
            card = json.loads(text)
            return card if isinstance(card, dict) else None
        model = f.string(f"{IMAGE_METADATA}/scan_model")
        if model is None:
            return None

        def number(name: str) -> float | None:
            field = f"{IMAGE_METADATA}/{name}"
            return f.number(field) if f.has(field) else None

        card = {
            "model": model,
            "gradient": number("scan_plane_gradient_t_per_m"),
            "z_gradient": number("z_gradient_t_per_m"),
            "particle_diameter": number("particle_diameter_m"),
        }
        card = {key: value for key, value in card.items() if value is not None}
        card["z_step"] = number("z_step_m")
        card["snr_db"] = number("snr_db")
        return card
    except (MDFError, ValueError):
        return None
