"""npe2 writer: image layers as MDF reconstructions.

napari's save dialog has already asked before replacing a file, so the writer replaces it
(the core writes safely: a failed write leaves the old file). Layers that are not images in
physical space are refused with the reason: calibration stacks, measurements, RGB images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..image import MPIImage
from ..io import write_reconstruction


def image_from_layer_data(data: np.ndarray, meta: dict) -> MPIImage:
    """Build an MPIImage from a layer's data and attributes (``scale``/``translate`` in mm).

    Arrays are read as (y, x), (z, y, x) or (frames, z, y, x); a layer that came from this
    plugin (``metadata["mpi_image"]``) keeps its frame axis and geometry.
    """
    arr = np.asarray(data)
    if arr.ndim < 2 or arr.ndim > 4:
        raise ValueError(f"can only save 2-D to 4-D image layers as MDF, got {arr.ndim}-D")
    if np.iscomplexobj(arr):
        raise ValueError("complex image layers cannot be saved as MDF reconstructions")
    source = (meta.get("metadata") or {}).get("mpi_image")
    ndim = arr.ndim
    scale = np.asarray(meta.get("scale", np.ones(ndim)), dtype=np.float64)[-ndim:]
    translate = np.asarray(meta.get("translate", np.zeros(ndim)), dtype=np.float64)[-ndim:]
    if isinstance(source, MPIImage) and arr.size == source.data.size:
        frames = source.num_frames
        vol = arr.reshape((frames, *source.grid_shape))
        spatial = source.grid_shape
        fov, center = source.fov, source.center
        extra = {k: v for k, v in source.metadata.items() if isinstance(v, str | int | float)}
    else:
        if ndim == 2:
            vol = arr[np.newaxis, np.newaxis]
        elif ndim == 3:
            vol = arr[np.newaxis]
        else:
            vol = arr
        spatial = vol.shape[1:]
        sp = len(spatial) - min(ndim, 3)  # leading spatial axes the layer did not have
        scale_zyx = np.concatenate([np.ones(sp), scale[-min(ndim, 3) :]]) * 1e-3
        trans_zyx = np.concatenate([np.zeros(sp), translate[-min(ndim, 3) :]]) * 1e-3
        fov = scale_zyx * np.asarray(spatial)
        center = trans_zyx + (np.asarray(spatial) - 1) * scale_zyx / 2
        extra = {}
    return MPIImage(data=vol.astype(np.float32), fov=fov, center=center, metadata=extra)


class LayerNotSavableError(TypeError):
    """A layer that is not an image in physical space was given to the MDF writer.

    Not a ValueError: napari takes a writer's ValueError for "no writer" and drops its text.
    """


_NOT_IMAGES = {
    "calibration": "it is a system-matrix stack (one slice per row, not an image in space); "
    "save the calibration with napari_mpi.write_mdf(path, layer.metadata['system_matrix'])",
    "measurement": "it holds measured spectra (channel x frame x frequency), not an image",
    "row_labels": "it holds the row labels of a calibration, not an image",
}


def refusal(meta: dict) -> str | None:
    """Why a layer (its layer-data attributes) cannot be saved as a reconstruction, or None."""
    kind = (meta.get("metadata") or {}).get("kind")
    if kind in _NOT_IMAGES:
        return _NOT_IMAGES[kind]
    if meta.get("rgb"):
        return "it is an RGB(A) picture; MDF reconstructions hold concentrations, one per voxel"
    return None


def write_image_layer(path: str, data: np.ndarray, meta: dict) -> list[str]:
    """Save an image layer as an MDF 2.1 reconstruction, replacing an existing file.

    Raises :class:`LayerNotSavableError` (naming the layer and the reason) for layers that
    are not images in physical space.
    """
    reason = refusal(meta)
    if reason is not None:
        raise LayerNotSavableError(f"cannot save layer '{meta.get('name', '')}' as MDF: {reason}")
    image = image_from_layer_data(data, meta)
    image.metadata.setdefault("layer_name", str(meta.get("name", "")))
    target = Path(path)
    if target.suffix.lower() not in (".mdf", ".h5", ".hdf5"):
        target = target.with_suffix(".mdf")
    write_reconstruction(target, image, overwrite=True)
    return [str(target)]
