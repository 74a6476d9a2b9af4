"""Reading and writing the voxel grid of a calibration or reconstruction (size, FOV, order)."""

from __future__ import annotations

import math

import h5py
import numpy as np

from ._fields import FieldReader
from ._metadata import put


def read_grid(
    f: FieldReader, group: str, num_voxels: int
) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, np.ndarray]:
    """Grid shape, field of view, centre and voxel permutation of ``calibration`` or
    ``reconstruction``.

    Parameters
    ----------
    f : FieldReader
        The open file.
    group : str
        ``"calibration"`` or ``"reconstruction"``.
    num_voxels : int
        Number of voxels the data hold (the grid must have as many).

    Returns
    -------
    shape : tuple of int
        (z, y, x) voxels.
    fov, center : ndarray, shape (3,)
        Field of view and its centre (m), (z, y, x); zeros where the file has none.
    perm : ndarray of int, shape (num_voxels,)
        Stored voxel index of each voxel in C order over (z, y, x).
    """
    if f.has(f"{group}/size"):
        size_xyz = f.array(f"{group}/size", kind="i", size=3).reshape(3)
    elif f.has(f"{group}/positions"):
        pos = f.array(f"{group}/positions", ndim=(2,))
        size_xyz = np.array([np.unique(np.round(pos[:, a], 9)).size for a in range(3)])
        if int(np.prod(size_xyz)) != num_voxels:
            size_xyz = np.array([num_voxels, 1, 1])
    else:
        size_xyz = np.array([num_voxels, 1, 1])
    if np.any(size_xyz < 1) or math.prod(int(n) for n in size_xyz) != num_voxels:
        raise f.error(
            f"{group}/size",
            f"grid {size_xyz.tolist()} (x, y, z) has {int(np.prod(size_xyz))} voxels but the "
            f"data has {num_voxels}",
        )
    fov = (
        f.array(f"{group}/fieldOfView", size=3).reshape(3)
        if f.has(f"{group}/fieldOfView")
        else np.zeros(3)
    )
    center = (
        f.array(f"{group}/fieldOfViewCenter", size=3).reshape(3)
        if f.has(f"{group}/fieldOfViewCenter")
        else np.zeros(3)
    )
    for name, value in (("fieldOfView", fov), ("fieldOfViewCenter", center)):
        if not np.all(np.isfinite(value)):
            raise f.error(f"{group}/{name}", f"expected finite values, found {value.tolist()}")
    if np.any(fov < 0):
        raise f.error(f"{group}/fieldOfView", f"expected sizes >= 0, found {fov.tolist()}")
    order = (f.string(f"{group}/order", default="xyz") or "xyz").strip().lower()
    if sorted(order) != ["x", "y", "z"]:
        raise f.error(f"{group}/order", f"expected a permutation of 'xyz', found '{order}'")
    # stored index: first letter of `order` varies fastest.
    sizes = {"x": size_xyz[0], "y": size_xyz[1], "z": size_xyz[2]}
    slow_to_fast = order[::-1]
    stored = np.arange(num_voxels).reshape([int(sizes[a]) for a in slow_to_fast])
    perm = stored.transpose([slow_to_fast.index(a) for a in "zyx"]).reshape(-1)
    shape = (int(size_xyz[2]), int(size_xyz[1]), int(size_xyz[0]))
    return shape, fov[::-1].copy(), center[::-1].copy(), perm


def write_grid(h5: h5py.File, group: str, shape_zyx, fov_zyx, center_zyx) -> None:
    """``size``, ``fieldOfView``, ``fieldOfViewCenter`` (x, y, z) and ``order = "xyz"``."""
    put(h5, f"{group}/size", np.asarray(shape_zyx, dtype=np.int64)[::-1])
    put(h5, f"{group}/fieldOfView", np.asarray(fov_zyx, dtype=np.float64)[::-1])
    put(h5, f"{group}/fieldOfViewCenter", np.asarray(center_zyx, dtype=np.float64)[::-1])
    put(h5, f"{group}/order", "xyz")
