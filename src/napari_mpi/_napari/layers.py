"""Turn core objects (system matrices, spectra, images) into napari layer-data tuples.

Layer data are plain ``(data, kwargs, layer_type)`` tuples, so this module imports no napari.
Physical placement follows the project convention: ``scale`` and ``translate`` in mm, (z, y, x);
a z axis of one voxel is dropped so 2D results overlay each other and 2D phantoms.
"""

from __future__ import annotations

import numpy as np

from ..grid import Grid
from ..image import MPIImage
from ..system_matrix import SystemMatrix

LayerData = tuple[np.ndarray, dict, str]


def _spatial(grid: Grid) -> tuple[slice | int, tuple[float, ...], tuple[float, ...], list[str]]:
    """Index that drops a one-voxel z axis, and the matching scale, translate and axis names."""
    scale, translate = list(grid.scale_mm), list(grid.translate_mm)
    names = ["z", "y", "x"]
    if grid.shape[0] == 1:
        return 0, tuple(scale[1:]), tuple(translate[1:]), names[1:]
    return slice(None), tuple(scale), tuple(translate), names


def system_matrix_layer(sm: SystemMatrix, name: str) -> LayerData:
    """An image stack of system-matrix patterns: one slice per row, magnitude, in mm."""
    index, scale, translate, names = _spatial(sm.grid)
    data = np.abs(sm.patterns())[:, index]
    labels = sm.row_labels()
    kwargs = {
        "name": name,
        "scale": (1.0, *scale),
        "translate": (0.0, *translate),
        "axis_labels": ("row", *names),
        "colormap": "inferno",
        "metadata": {
            "system_matrix": sm,
            "row_labels": labels,
            "kind": "calibration",
            "source": sm.source,
        },
    }
    return data.astype(np.float32), kwargs, "image"


def row_label_layer(sm: SystemMatrix, name: str) -> LayerData:
    """A Points layer whose text shows, on each row slice, that row's channel and frequency.

    One invisible point per row sits at the upper-left corner of the field of view, so the
    label follows the row slider of :func:`system_matrix_layer`.
    """
    _, scale, translate, names = _spatial(sm.grid)
    n_spatial = len(names)
    corner = np.asarray(translate) - np.asarray(scale) / 2  # upper-left voxel edge (mm)
    coords = np.zeros((sm.num_rows, 1 + n_spatial))
    coords[:, 0] = np.arange(sm.num_rows)
    coords[:, 1:] = corner
    kwargs = {
        "name": name,
        "features": {"label": sm.row_labels()},
        "text": {"string": "{label}", "anchor": "upper_left", "color": "white", "size": 10},
        "size": 0.0,
        "face_color": "transparent",
        "border_width": 0.0,
        "axis_labels": ("row", *names),
        "metadata": {"kind": "row_labels"},
    }
    return coords, kwargs, "points"


def spectra_layer(
    spectra: np.ndarray, frequencies: np.ndarray, name: str, metadata: dict | None = None
) -> LayerData:
    """Measured spectra as an image (channel, frame, frequency) of log10 magnitude.

    ``spectra`` is (frames, channels, K) complex; the complex data ride in ``metadata``.
    """
    magnitude = np.abs(spectra).transpose(1, 0, 2)
    floor = np.finfo(np.float32).tiny
    data = np.log10(np.maximum(magnitude, floor)).astype(np.float32)
    kwargs = {
        "name": name,
        "axis_labels": ("channel", "frame", "frequency bin"),
        "colormap": "viridis",
        "metadata": {
            **(metadata or {}),
            "kind": "measurement",
            "spectra": spectra,
            "frequencies": np.asarray(frequencies),
        },
    }
    return data, kwargs, "image"


def image_layer(image: MPIImage, name: str) -> LayerData:
    """An MPIImage as an image layer in mm; a single frame drops the frame axis."""
    index, scale, translate, names = _spatial(image.grid)
    data = image.data[:, index]
    if data.shape[0] == 1:
        data = data[0]
    else:
        scale, translate, names = (1.0, *scale), (0.0, *translate), ["frame", *names]
    kwargs = {
        "name": name,
        "scale": scale,
        "translate": translate,
        "axis_labels": tuple(names),
        "colormap": "gray",
        "metadata": {"mpi_image": image, "kind": "reconstruction", **image.metadata},
    }
    return data, kwargs, "image"
