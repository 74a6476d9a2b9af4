"""Reconstructed (or phantom) images with their physical geometry."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .grid import Grid


@dataclass(eq=False)
class MPIImage:
    """A stack of frames on a regular grid.

    Parameters
    ----------
    data : ndarray, shape (frames, z, y, x)
        Image values (arbitrary units, usually particle concentration), float32.
    fov : array of float, shape (3,)
        Field of view (m), (z, y, x).
    center : array of float, shape (3,)
        Centre of the field of view (m), (z, y, x).
    metadata : dict
        Free-form description: method, parameters, source files.
    """

    data: np.ndarray
    fov: np.ndarray
    center: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim == 3:
            data = data[np.newaxis]
        if data.ndim != 4:
            raise ValueError(
                f"MPIImage.data must be (frames, z, y, x) or (z, y, x), got shape {data.shape}"
            )
        if np.iscomplexobj(data):
            raise ValueError("MPIImage.data must be real; take the real part or magnitude first")
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.grid = Grid(self.data.shape[1:], self.fov, self.center)
        self.fov = self.grid.fov
        self.center = self.grid.center

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Voxels per axis, (z, y, x)."""
        return self.grid.shape

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return int(self.data.shape[0])

    @property
    def voxel_size(self) -> np.ndarray:
        """Voxel edge lengths (m), (z, y, x)."""
        return self.grid.voxel_size

    @property
    def scale_mm(self) -> tuple[float, float, float]:
        """napari ``scale`` of one frame (mm), (z, y, x)."""
        return self.grid.scale_mm

    @property
    def translate_mm(self) -> tuple[float, float, float]:
        """napari ``translate`` of one frame (mm), (z, y, x)."""
        return self.grid.translate_mm

    def __repr__(self) -> str:
        return (
            f"MPIImage(frames={self.num_frames}, grid_zyx={self.grid_shape}, "
            f"fov_mm={np.round(self.fov * 1e3, 3).tolist()}, "
            f"center_mm={np.round(self.center * 1e3, 3).tolist()})"
        )
