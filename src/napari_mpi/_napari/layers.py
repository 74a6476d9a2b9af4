"""Turn core objects (system matrices, spectra, images) into napari layer-data tuples.

Layer data are plain ``(data, kwargs, layer_type)`` tuples, so this module imports no napari
and the tuples can be built inside a worker thread. Physical placement follows the project
convention: ``scale`` and ``translate`` in mm, (z, y, x); a z axis of one voxel is dropped so
2D results overlay each other and 2D phantoms.

What the user sees:

- images get contrast limits that show their maximum (from 0 when the data are non-negative
  or mostly so);
- a calibration is a stack of row patterns, each row scaled to its own maximum (so one contrast
  range shows every row), opening at its strongest row (``metadata["start_row"]``);
- a measurement's spectra (channel x frame x frequency) are not spatial: the measurement is an
  *empty* Points layer that carries the spectra in ``metadata`` and therefore never enters the
  mm world's extent; the Spectra dock plots them.

Layer names are short; what produced a layer is in ``layer.metadata``.
"""

from __future__ import annotations

import numpy as np

from ..grid import Grid
from ..image import MPIImage
from ..system_matrix import SystemMatrix

LayerData = tuple[np.ndarray, dict, str]

#: ``metadata["kind"]`` values of layers that are images in physical space (mm).
PHYSICAL_KINDS = ("phantom", "reconstruction", "xspace", "image", "enhancement")


def _spatial(grid: Grid) -> tuple[slice | int, tuple[float, ...], tuple[float, ...], list[str]]:
    """Index that drops a one-voxel z axis, and the matching scale, translate and axis names."""
    scale, translate = list(grid.scale_mm), list(grid.translate_mm)
    names = ["z", "y", "x"]
    if grid.shape[0] == 1:
        return 0, tuple(scale[1:]), tuple(translate[1:]), names[1:]
    return slice(None), tuple(scale), tuple(translate), names


def contrast_limits(data: np.ndarray) -> tuple[float, float]:
    """Contrast limits that make the maximum visible: (0 or the minimum, maximum).

    The lower limit is 0 unless the data are mostly negative; noise below 0 then shows black.
    """
    finite = np.asarray(data)[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi > 0:
        lo = 0.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    return lo, hi


def row_strength(sm: SystemMatrix) -> np.ndarray:
    """How strong each row is: its stored SNR, or its energy when the file has no SNR."""
    if sm.snr is not None and np.any(np.isfinite(sm.snr)):
        return np.nan_to_num(np.asarray(sm.snr, np.float64), nan=-np.inf)
    return np.linalg.norm(sm.matrix, axis=1).astype(np.float64)


def system_matrix_layer(sm: SystemMatrix, name: str) -> LayerData:
    """An image stack of system-matrix patterns: one slice per row, in mm.

    Each slice is the row's magnitude divided by its maximum (contrast 0..1 shows every row);
    ``metadata["row_scale"]`` holds the maxima, ``metadata["start_row"]`` the strongest row,
    the slice the viewer opens at.
    """
    index, scale, translate, names = _spatial(sm.grid)
    magnitude = np.abs(sm.patterns())[:, index].astype(np.float32)
    peak = magnitude.reshape(sm.num_rows, -1).max(axis=1)
    safe = np.where(peak > 0, peak, 1.0).astype(np.float32)
    data = magnitude / safe.reshape((-1,) + (1,) * (magnitude.ndim - 1))
    start = int(np.argmax(row_strength(sm))) if sm.num_rows else 0
    kwargs = {
        "name": name,
        "scale": (1.0, *scale),
        "translate": (0.0, *translate),
        "axis_labels": ("row", *names),
        "colormap": "inferno",
        "contrast_limits": (0.0, 1.0),
        "metadata": {
            "system_matrix": sm,
            "row_labels": sm.row_labels(),
            "row_scale": peak,
            "start_row": start,
            "kind": "calibration",
            "display": "each row's magnitude divided by its maximum (row_scale)",
            "source": sm.source,
        },
    }
    return data, kwargs, "image"


def row_label_layer(sm: SystemMatrix, name: str) -> LayerData:
    """A Points layer whose text shows, on each row slice, that row's channel and frequency.

    One invisible point per row sits at the centre of the upper-left voxel (so the text starts
    inside the field of view, not cut by the canvas edge when the view is framed), and the
    label follows the row slider of :func:`system_matrix_layer`.
    """
    _, _scale, translate, names = _spatial(sm.grid)
    n_spatial = len(names)
    corner = np.asarray(translate, dtype=np.float64)  # upper-left voxel centre (mm)
    coords = np.zeros((sm.num_rows, 1 + n_spatial))
    coords[:, 0] = np.arange(sm.num_rows)
    coords[:, 1:] = corner
    labels = [f"row {i}: {text}" for i, text in enumerate(sm.row_labels())]
    kwargs = {
        "name": name,
        "features": {"label": labels},
        "text": {"string": "{label}", "anchor": "upper_left", "color": "white", "size": 10},
        "size": 0.0,
        "face_color": "transparent",
        "border_width": 0.0,
        "axis_labels": ("row", *names),
        "metadata": {"kind": "row_labels"},
    }
    return coords, kwargs, "points"


def calibration_layers(sm: SystemMatrix, name: str) -> list[LayerData]:
    """The pattern stack and its row labels (every calibration gets both)."""
    return [system_matrix_layer(sm, name), row_label_layer(sm, f"{name} rows")]


def spectra_layer(
    spectra: np.ndarray, frequencies: np.ndarray, name: str, metadata: dict | None = None
) -> LayerData:
    """A measurement as an empty Points layer carrying its spectra in ``metadata``.

    ``spectra`` is (frames, channels, K) complex. The layer has no points, so it takes no room
    in the mm world (napari leaves empty layers out of the view's extent) and adds no sliders;
    the Spectra dock plots ``metadata["spectra"]`` against ``metadata["frequencies"]`` (Hz).
    """
    spectra = np.asarray(spectra)
    kwargs = {
        "name": name,
        "ndim": 2,
        "metadata": {
            **(metadata or {}),
            "kind": "measurement",
            "spectra": spectra,
            "frequencies": np.asarray(frequencies),
            "shape": "frames x channels x frequencies = " + " x ".join(map(str, spectra.shape)),
        },
    }
    return np.zeros((0, 2)), kwargs, "points"


def image_layer(image: MPIImage, name: str, kind: str = "reconstruction") -> LayerData:
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
        "contrast_limits": contrast_limits(data),
        "metadata": {"mpi_image": image, **image.metadata, "kind": kind},
    }
    return data, kwargs, "image"
