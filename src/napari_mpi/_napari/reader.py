"""npe2 reader: MDF calibrations, measurements and reconstructions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..io import MDFFile, is_mdf, read_mdf
from .layers import (
    LayerData,
    image_layer,
    row_label_layer,
    spectra_layer,
    system_matrix_layer,
)

_EXTENSIONS = (".mdf", ".h5", ".hdf5")


def napari_get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """Return a reader for one MDF file, or None when ``path`` is not MDF (other HDF5 files)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not str(path).lower().endswith(_EXTENSIONS) or not is_mdf(path):
        return None
    return read_layers


def layers_from_file(f: MDFFile) -> list[LayerData]:
    """The layers an open MDF file becomes (one per file; metadata-only files give none)."""
    stem = Path(f.path).stem
    if f.kind == "calibration":
        sm = f.system_matrix()
        return [
            system_matrix_layer(sm, f"{stem} system matrix"),
            row_label_layer(sm, f"{stem} row labels"),
        ]
    if f.kind == "measurement":
        spectra = f.spectra(background_correction=False)[:, 0]
        meta = {
            "source": str(f.path),
            "acquisition": f.acquisition,
            "num_background_frames": f.num_background_frames,
        }
        return [spectra_layer(spectra, f.frequencies, f"{stem} spectra", meta)]
    if f.kind == "reconstruction":
        return [image_layer(f.image(), f"{stem}")]
    return []


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Read an MDF file into napari layer data."""
    if isinstance(path, list):
        path = path[0]
    with read_mdf(path) as f:
        layers = layers_from_file(f)
    if not layers:
        raise ValueError(
            f"{path}: is a metadata-only MDF file (no calibration, measurement or "
            "reconstruction data to show)"
        )
    return layers
