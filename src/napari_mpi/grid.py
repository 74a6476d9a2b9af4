"""Geometry of a regular voxel grid: shape, field of view and centre, all in (z, y, x) order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Grid:
    """A regular grid of voxels covering a field of view.

    Parameters
    ----------
    shape : tuple of int
        Number of voxels (z, y, x).
    fov : array of float, shape (3,)
        Extent of the grid (m), (z, y, x). Voxel ``i`` along an axis has its centre at
        ``center - fov / 2 + (i + 0.5) * fov / shape``.
    center : array of float, shape (3,)
        Centre of the field of view in scanner coordinates (m), (z, y, x).
    """

    shape: tuple[int, int, int]
    fov: np.ndarray
    center: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"grid shape must be three positive sizes (z, y, x), got {shape}")
        fov = np.asarray(self.fov, dtype=np.float64).reshape(3)
        center = np.asarray(self.center, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(fov)) or np.any(fov < 0):
            raise ValueError(f"field of view must be finite and non-negative (m), got {fov}")
        if not np.all(np.isfinite(center)):
            raise ValueError(f"grid centre must be finite (m), got {center}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "fov", fov)
        object.__setattr__(self, "center", center)

    @property
    def num_voxels(self) -> int:
        """Total number of voxels."""
        return int(np.prod(self.shape))

    @property
    def voxel_size(self) -> np.ndarray:
        """Edge lengths of one voxel (m), (z, y, x). A zero FOV gives a unit size of 1 mm."""
        size = self.fov / np.asarray(self.shape)
        return np.where(size > 0, size, 1e-3)

    @property
    def origin(self) -> np.ndarray:
        """Centre of the first voxel (m), (z, y, x)."""
        return self.center - self.fov / 2 + self.voxel_size / 2

    @property
    def scale_mm(self) -> tuple[float, float, float]:
        """napari ``scale`` for this grid: voxel size in mm, (z, y, x)."""
        return tuple(float(v) for v in self.voxel_size * 1e3)

    @property
    def translate_mm(self) -> tuple[float, float, float]:
        """napari ``translate`` for this grid: first voxel centre in mm, (z, y, x)."""
        return tuple(float(v) for v in self.origin * 1e3)

    def coordinates(self, axis: int) -> np.ndarray:
        """Voxel centres along one axis (m)."""
        return self.origin[axis] + np.arange(self.shape[axis]) * self.voxel_size[axis]

    def same_as(self, other: Grid, rtol: float = 1e-6) -> bool:
        """True when both grids have the same shape, FOV and centre."""
        return (
            self.shape == other.shape
            and np.allclose(self.fov, other.fov, rtol=rtol, atol=1e-12)
            and np.allclose(self.center, other.center, rtol=rtol, atol=1e-12)
        )
