"""Resampling images between grids in physical coordinates (area averaging)."""

from __future__ import annotations

import numpy as np

from .grid import Grid
from .image import MPIImage


def _overlap_matrix(src: Grid, dst: Grid, axis: int) -> np.ndarray:
    """(n_dst, n_src) weights: share of each destination voxel covered by each source voxel.

    A zero-extent axis (a 2D grid's z) is thin: a thin destination samples the source by
    linear interpolation at its centre; a thin source is taken as constant along the axis.
    """
    n_src, n_dst = src.shape[axis], dst.shape[axis]
    if src.fov[axis] == 0:
        return np.ones((n_dst, n_src)) / n_src
    s_edges = src.center[axis] - src.fov[axis] / 2 + np.arange(n_src + 1) * src.fov[axis] / n_src
    if dst.fov[axis] == 0:
        s_centres = (s_edges[:-1] + s_edges[1:]) / 2
        w = np.zeros((n_dst, n_src))
        for i, x in enumerate(dst.coordinates(axis)):
            if x < s_edges[0] or x > s_edges[-1]:
                continue
            j = int(np.clip(np.searchsorted(s_centres, x) - 1, 0, max(n_src - 2, 0)))
            if n_src == 1:
                w[i, 0] = 1.0
                continue
            t = np.clip((x - s_centres[j]) / (s_centres[j + 1] - s_centres[j]), 0.0, 1.0)
            w[i, j], w[i, j + 1] = 1 - t, t
        return w
    d_edges = dst.center[axis] - dst.fov[axis] / 2 + np.arange(n_dst + 1) * dst.fov[axis] / n_dst
    lo = np.maximum(d_edges[:-1, None], s_edges[None, :-1])
    hi = np.minimum(d_edges[1:, None], s_edges[None, 1:])
    return np.clip(hi - lo, 0.0, None) / np.diff(d_edges)[:, None]


def resample(image: MPIImage, grid: Grid) -> MPIImage:
    """Resample ``image`` onto ``grid`` by area (volume) averaging in physical coordinates.

    Each destination voxel gets the volume-weighted mean of the source voxels it overlaps;
    parts outside the source field of view count as zero. Concentrations are preserved on
    average, so a phantom resampled onto a calibration grid gives the same ``S c``.
    """
    data = image.data.astype(np.float64)
    for axis in range(3):
        w = _overlap_matrix(image.grid, grid, axis)
        data = np.moveaxis(
            np.tensordot(w, np.moveaxis(data, axis + 1, 0), axes=(1, 0)), 0, axis + 1
        )
    return MPIImage(
        data.astype(np.float32), fov=grid.fov, center=grid.center, metadata=dict(image.metadata)
    )
