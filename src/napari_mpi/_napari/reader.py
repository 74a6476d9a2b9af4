"""npe2 reader: MDF calibrations, measurements and reconstructions.

Which files it takes: every ``*.mdf`` (a file the reader cannot parse then fails with the
:class:`~napari_mpi.io.MDFError` text, naming the file and the field, however it was opened),
and ``*.h5`` / ``*.hdf5`` only when they look like MDF, so other HDF5 files go to other readers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import MDFFile, is_mdf, read_mdf
from . import view
from .layers import LayerData, calibration_layers, image_layer, spectra_layer

_EXTENSIONS = (".mdf", ".h5", ".hdf5")


def napari_get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """Return a reader for one MDF file, or None when ``path`` is not MDF (other HDF5 files)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    name = str(path).lower()
    if name.endswith(".mdf"):
        return read_layers  # ours, readable or not: a broken file gets the MDFError text
    if not name.endswith(_EXTENSIONS) or not is_mdf(path):
        return None
    return read_layers


#: Largest system matrix (complex64 bytes) the reader loads whole into the viewer.
DISPLAY_LIMIT_BYTES = 512 * 2**20


def display_selection(f: MDFFile, limit_bytes: int | None = None) -> dict:
    """Frequency selection that keeps a calibration within ``limit_bytes`` for display.

    Empty when the whole matrix fits; otherwise the rows with the highest stored SNR, or the
    lowest frequencies when the file has no SNR.
    """
    limit_bytes = DISPLAY_LIMIT_BYTES if limit_bytes is None else limit_bytes
    layout = f.summary()
    voxels = layout["frames"] - layout["background_frames"]
    per_channel = layout["frequencies"] * layout.get("periods", 1)
    rows = per_channel * layout["channels"]
    if rows * voxels * 8 <= limit_bytes:
        return {}
    keep = max(1, limit_bytes // (voxels * 8))
    snr = f.stored_snr()
    if snr is not None:
        return {"snr_threshold": float(np.sort(snr.ravel())[::-1][keep - 1])}
    bins = max(1, keep // max(rows // layout["frequencies"], 1))
    return {"max_frequency": float(np.sort(f.frequencies)[bins - 1])}


def layers_from_file(f: MDFFile) -> list[LayerData]:
    """The layers an open MDF file becomes (one per file; metadata-only files give none)."""
    stem = Path(f.path).stem
    if f.kind == "calibration":
        selection = display_selection(f)
        sm = f.system_matrix(**selection)
        if selection:
            warnings.warn(
                f"{f.path}: the whole system matrix does not fit the viewer's budget "
                f"({DISPLAY_LIMIT_BYTES // 2**20} MiB); showing {sm.num_rows} rows selected by "
                f"{selection}. napari_mpi.read_mdf reads every row.",
                stacklevel=2,
            )
            sm.metadata["display_selection"] = selection
        return calibration_layers(sm, stem)
    if f.kind == "measurement":
        spectra = f.spectra(background_correction=False)[:, 0]
        meta = {
            "source": str(f.path),
            "acquisition": f.acquisition,
            "num_background_frames": f.num_background_frames,
        }
        return [spectra_layer(spectra, f.frequencies, stem, meta)]
    if f.kind == "reconstruction":
        return [image_layer(f.image(), stem)]
    return []


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Read an MDF file into napari layer data."""
    if isinstance(path, list):
        path = path[0]
    view.install_current()
    with read_mdf(path) as f:
        layers = layers_from_file(f)
    if not layers:
        raise ValueError(
            f"{path}: is a metadata-only MDF file (no calibration, measurement or "
            "reconstruction data to show)"
        )
    return layers
