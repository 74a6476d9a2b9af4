"""Phantoms on a physical grid: resolution and shape test objects, digits and vessels.

Every function returns an :class:`~napari_mpi.MPIImage` of one frame on the given grid, with
values in mmol(Fe)/L (``concentration`` sets the maximum). Shapes are rasterised with
``supersample`` points per axis inside each voxel, so edges are partial-volume averaged.

A phantom can also be named by a SPEC string (see :func:`make_phantom`), as the CLI does; the
names, parameters and help of SPEC strings live in one registry,
:mod:`napari_mpi.simulation.phantom_specs`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..datasets import load_npz_images
from ..grid import Grid
from ..image import MPIImage

Inside = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _subgrid(grid: Grid, supersample: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates (x, y, z) of supersample^3 points per voxel, each of shape (Z, Y, X)."""
    axes = []
    for a in range(3):
        n = grid.shape[a]
        s = supersample if grid.fov[a] > 0 else 1
        edges0 = grid.center[a] - grid.fov[a] / 2
        step = grid.fov[a] / (n * s) if grid.fov[a] > 0 else 0.0
        coords = edges0 + (np.arange(n * s) + 0.5) * step if step else np.full(n, grid.center[a])
        axes.append(coords)
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    return xx, yy, zz


def rasterize(grid: Grid, inside: Inside, supersample: int = 3) -> np.ndarray:
    """Fraction of each voxel for which ``inside(x, y, z)`` holds, shape (z, y, x)."""
    xx, yy, zz = _subgrid(grid, supersample)
    mask = inside(xx, yy, zz).astype(np.float64)
    factors = [mask.shape[a] // grid.shape[a] for a in range(3)]
    shape = []
    for a in range(3):
        shape += [grid.shape[a], factors[a]]
    return mask.reshape(shape).mean(axis=(1, 3, 5))


def _image(values: np.ndarray, grid: Grid, concentration: float, meta: dict) -> MPIImage:
    if concentration <= 0:
        raise ValueError(f"concentration must be positive (mmol/L), got {concentration}")
    peak = float(values.max()) if values.size else 0.0
    data = values / peak * concentration if peak > 0 else values
    return MPIImage(data[np.newaxis].astype(np.float32), grid.fov, grid.center, metadata=meta)


def _axis_index(axis: str) -> int:
    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    return "xyz".index(axis)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def _extent(grid: Grid, axis: int) -> float:
    return float(grid.fov[::-1][axis])


def two_points(
    grid: Grid,
    gap: float,
    axis: str = "x",
    diameter: float | None = None,
    concentration: float = 1.0,
    supersample: int = 3,
) -> MPIImage:
    """Two small spheres (or discs on a 2D grid) whose centres are ``gap`` apart (m).

    ``diameter`` defaults to one voxel edge along ``axis``.
    """
    a = _axis_index(axis)
    _check_positive(gap=gap)
    extent = _extent(grid, a)
    if gap >= extent:
        raise ValueError(f"gap {gap * 1e3:.3g} mm does not fit in the {extent * 1e3:.3g} mm FOV")
    d = diameter if diameter is not None else float(grid.voxel_size[::-1][a])
    _check_positive(diameter=d)
    c = grid.center[::-1]

    def inside(x, y, z):
        r = [x - c[0], y - c[1], z - c[2]]
        out = np.zeros(x.shape, dtype=bool)
        for sign in (-1, 1):
            q = list(r)
            q[a] = q[a] - sign * gap / 2
            thin = [grid.fov[::-1][i] == 0 for i in range(3)]
            dist2 = sum(0 if thin[i] else q[i] ** 2 for i in range(3))
            out |= dist2 <= (d / 2) ** 2
        return out

    values = rasterize(grid, inside, supersample)
    meta = {"phantom": "two-points", "gap_m": gap, "axis": axis, "diameter_m": d}
    return _image(values, grid, concentration, meta)


def two_tubes(
    grid: Grid,
    gap: float,
    diameter: float = 1.2e-3,
    axis: str = "x",
    concentration: float = 1.0,
    supersample: int = 3,
) -> MPIImage:
    """Two parallel tubes of ``diameter`` (m) with an edge-to-edge ``gap`` (m) along ``axis``.

    The tubes run along the next in-plane axis (y for ``axis="x"``), across the whole FOV, as
    the two-tube resolution phantoms of the DC_GAN paper (1.2 mm tubes, 1.0-3.4 mm gaps).
    """
    a = _axis_index(axis)
    _check_positive(gap=gap, diameter=diameter)
    extent = _extent(grid, a)
    if gap + 2 * diameter > extent:
        raise ValueError(
            f"gap {gap * 1e3:.3g} mm plus two {diameter * 1e3:.3g} mm tubes does not fit in the "
            f"{extent * 1e3:.3g} mm FOV along {axis}"
        )
    run = 1 if a != 1 else 0  # the tubes' own direction
    c = grid.center[::-1]
    offset = (gap + diameter) / 2

    def inside(x, y, z):
        r = [x - c[0], y - c[1], z - c[2]]
        others = [i for i in range(3) if i not in (a, run) and grid.fov[::-1][i] > 0]
        out = np.zeros(x.shape, dtype=bool)
        for sign in (-1, 1):
            dist2 = (r[a] - sign * offset) ** 2 + sum(r[i] ** 2 for i in others)
            out |= dist2 <= (diameter / 2) ** 2
        return out

    values = rasterize(grid, inside, supersample)
    meta = {"phantom": "two-tubes", "gap_m": gap, "diameter_m": diameter, "axis": axis}
    return _image(values, grid, concentration, meta)


def shape_phantom(
    grid: Grid,
    length: float = 20e-3,
    tip_radius: float = 0.5e-3,
    base_radius: float = 5e-3,
    concentration: float = 1.0,
    supersample: int = 3,
) -> MPIImage:
    """A cone along x (apex at -length/2), modelled on the public 'shape' phantom.

    On a 2D grid the slice through its axis is a triangle-like wedge.
    """
    _check_positive(length=length, tip_radius=tip_radius, base_radius=base_radius)
    c = grid.center[::-1]

    def inside(x, y, z):
        u = x - c[0] + length / 2  # 0 at the tip
        radius = tip_radius + (base_radius - tip_radius) * u / length
        rr2 = (y - c[1]) ** 2 + (0 if grid.fov[0] == 0 else (z - c[2]) ** 2)
        return (u >= 0) & (u <= length) & (rr2 <= radius**2)

    values = rasterize(grid, inside, supersample)
    meta = {"phantom": "shape", "length_m": length, "base_radius_m": base_radius}
    return _image(values, grid, concentration, meta)


def resolution_phantom(
    grid: Grid,
    diameter: float = 1.0e-3,
    length: float = 18e-3,
    angles_deg: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0),
    concentration: float = 1.0,
    supersample: int = 3,
) -> MPIImage:
    """Tubes fanning out from a common point in the x-y plane, modelled on the public
    'resolution' phantom: their separation grows along x, so where they part shows the
    resolution."""
    _check_positive(diameter=diameter, length=length)
    c = grid.center[::-1]
    start = np.array([c[0] - length / 2, c[1]])

    def inside(x, y, z):
        out = np.zeros(x.shape, dtype=bool)
        px, py = x - start[0], y - start[1]
        for ang in np.deg2rad(angles_deg):
            d = np.array([np.cos(ang), np.sin(ang)])
            t = np.clip(px * d[0] + py * d[1], 0, length)
            dist2 = (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2
            if grid.fov[0] > 0:
                dist2 = dist2 + (z - c[2]) ** 2
            out |= dist2 <= (diameter / 2) ** 2
        return out

    values = rasterize(grid, inside, supersample)
    meta = {"phantom": "resolution", "diameter_m": diameter, "angles_deg": list(angles_deg)}
    return _image(values, grid, concentration, meta)


def concentration_phantom(
    grid: Grid,
    edge: float = 3e-3,
    levels: tuple[float, ...] = (1.0, 0.75, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05),
    concentration: float = 1.0,
    supersample: int = 3,
) -> MPIImage:
    """Cubes (squares in 2D) on a 4 x 2 layout with decreasing concentration, modelled on the
    public 'concentration' phantom. ``levels`` are relative to ``concentration``."""
    _check_positive(edge=edge)
    c = grid.center[::-1]
    cols, rows = 4, int(np.ceil(len(levels) / 4))
    pitch = 2 * edge
    values = np.zeros(grid.shape)
    for i, level in enumerate(levels):
        cx = c[0] + (i % cols - (cols - 1) / 2) * pitch
        cy = c[1] + (i // cols - (rows - 1) / 2) * pitch

        def inside(x, y, z, cx=cx, cy=cy):
            zin = True if grid.fov[0] == 0 else np.abs(z - c[2]) <= edge / 2
            return (np.abs(x - cx) <= edge / 2) & (np.abs(y - cy) <= edge / 2) & zin

        values += level * rasterize(grid, inside, supersample)
    meta = {"phantom": "concentration", "edge_m": edge, "levels": list(levels)}
    return _image(values, grid, concentration, meta)


# -- images from files ------------------------------------------------------------------------
def _resize_to(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from skimage.transform import resize

    out = resize(values.astype(np.float64), shape, order=1, anti_aliasing=True, mode="constant")
    return np.clip(out, 0, None)


def place_digit(
    image: np.ndarray,
    grid: Grid,
    rng: np.random.Generator,
    crop: int = 15,
    scale_range: tuple[float, float] = (0.8, 1.2),
    rotate: bool = True,
) -> np.ndarray:
    """Place a 2D digit as in the DERnet paper: central ``crop`` x ``crop`` patch, random
    rotation, random position inside the canvas (random scale within ``scale_range``), then
    resized to the grid's (y, x) size. Returns (z, y, x) values in 0..1."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    top, left = (h - crop) // 2, (w - crop) // 2
    patch = img[top : top + crop, left : left + crop]
    if rotate:
        patch = ndimage.rotate(patch, rng.uniform(0, 360), reshape=False, order=1, mode="constant")
    scale = rng.uniform(*scale_range)
    size = max(2, min(h, round(crop * scale)))
    patch = _resize_to(np.clip(patch, 0, None), (size, size))
    canvas = np.zeros((h, w))
    y0 = rng.integers(0, h - size + 1)
    x0 = rng.integers(0, w - size + 1)
    canvas[y0 : y0 + size, x0 : x0 + size] = patch
    out = _resize_to(canvas, grid.shape[1:])
    peak = out.max()
    out = out / peak if peak > 0 else out
    return np.broadcast_to(out, grid.shape).copy()


def digit_phantom(
    path: str | Path,
    grid: Grid,
    index: int | None = None,
    seed: int | None = 0,
    key: str | None = None,
    concentration: float = 1.0,
    place: bool = True,
) -> MPIImage:
    """A digit from an MNIST-style ``.npz``, placed as in the DERnet paper (see place_digit).

    ``index`` picks the image (random with ``seed`` when None); ``place=False`` only resizes.
    """
    images = load_npz_images(path, key)
    if images.ndim != 3:
        raise ValueError(f"phantom file {path}: digits need a (n, h, w) array, got {images.shape}")
    rng = np.random.default_rng(seed)
    if index is None:
        index = int(rng.integers(images.shape[0]))
    if not 0 <= index < images.shape[0]:
        raise ValueError(f"index {index} out of range: {path} holds {images.shape[0]} images")
    if place:
        values = place_digit(images[index], grid, rng)
    else:
        values = np.broadcast_to(_resize_to(images[index], grid.shape[1:]), grid.shape).copy()
    return _image(
        values, grid, concentration, {"phantom": "digit", "source": str(path), "index": index}
    )


def volume_phantom(
    path: str | Path,
    grid: Grid,
    index: int = 0,
    key: str | None = None,
    concentration: float = 1.0,
) -> MPIImage:
    """A volume from a MedMNIST-style ``.npz`` (n, d, h, w), resized to the grid (z, y, x)."""
    images = load_npz_images(path, key)
    if images.ndim != 4:
        raise ValueError(f"phantom file {path}: volumes need (n, d, h, w), got {images.shape}")
    if not 0 <= index < images.shape[0]:
        raise ValueError(f"index {index} out of range: {path} holds {images.shape[0]} volumes")
    values = _resize_to(images[index], grid.shape)
    return _image(
        values, grid, concentration, {"phantom": "volume", "source": str(path), "index": index}
    )


# -- procedural defaults (no file needed) ------------------------------------------------------
def _segments_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points (n, 3) to each segment a_i-b_i, minimum over segments: (n,)."""
    best = np.full(points.shape[0], np.inf)
    for p, q in zip(a, b, strict=True):
        d = q - p
        denom = float(d @ d) or 1e-30
        t = np.clip((points - p) @ d / denom, 0, 1)
        dist = np.linalg.norm(points - (p + t[:, None] * d), axis=1)
        best = np.minimum(best, dist)
    return best


def stroke_phantom(
    grid: Grid,
    seed: int | None = 0,
    strokes: int | None = None,
    thickness: float | None = None,
    concentration: float = 1.0,
) -> MPIImage:
    """Digit-like strokes: 2 to 4 random smooth curves in the x-y plane (needs no data file)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5)) if strokes is None else int(strokes)
    fov_xy = grid.fov[1:][::-1]
    c = grid.center[::-1]
    thick = thickness or 0.06 * float(min(fov_xy))
    a_list, b_list = [], []
    for _ in range(n):
        ctrl = c[:2] + (rng.random((3, 2)) - 0.5) * fov_xy * 0.7
        t = np.linspace(0, 1, 24)[:, None]
        curve = (1 - t) ** 2 * ctrl[0] + 2 * (1 - t) * t * ctrl[1] + t**2 * ctrl[2]
        pts = np.concatenate([curve, np.full((curve.shape[0], 1), c[2])], axis=1)
        a_list.append(pts[:-1])
        b_list.append(pts[1:])
    a, b = np.concatenate(a_list), np.concatenate(b_list)

    def inside(x, y, z):
        pts = np.stack([x.ravel(), y.ravel(), np.full(x.size, c[2])], axis=1)
        return (_segments_distance(pts, a, b) <= thick / 2).reshape(x.shape)

    values = rasterize(grid, inside, 2)
    return _image(values, grid, concentration, {"phantom": "strokes", "seed": seed, "strokes": n})


def vessel_phantom(
    grid: Grid,
    seed: int | None = 0,
    generations: int = 3,
    radius: float | None = None,
    concentration: float = 1.0,
) -> MPIImage:
    """A random 3D vessel tree: a trunk that branches ``generations`` times with thinning
    radii (needs no data file). On a 2D grid its slice through the centre plane is shown."""
    rng = np.random.default_rng(seed)
    fov = np.where(grid.fov[::-1] > 0, grid.fov[::-1], grid.voxel_size[::-1])
    c = grid.center[::-1]
    r0 = radius or 0.06 * float(fov.min() if grid.fov[0] > 0 else fov[:2].min())
    start = c - np.array([fov[0] * 0.45, 0, 0])
    direction = np.array([1.0, 0.0, 0.0])
    segments: list[tuple[np.ndarray, np.ndarray, float]] = []

    def grow(p, d, r, depth):
        length = 0.35 * fov[0] * (0.75**depth)
        q = p + d * length
        segments.append((p, q, r))
        if depth >= generations:
            return
        for _ in range(2):
            turn = rng.normal(size=3) * 0.6
            nd = d + turn
            if grid.fov[0] == 0:
                nd[2] = 0
            nd /= np.linalg.norm(nd)
            grow(q, nd, r * 0.75, depth + 1)

    grow(start, direction, r0, 0)

    def inside(x, y, z):
        pts = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
        if grid.fov[0] == 0:
            pts[:, 2] = c[2]
        out = np.zeros(pts.shape[0], dtype=bool)
        for p, q, r in segments:
            out |= _segments_distance(pts, p[None], q[None]) <= r
        return out.reshape(x.shape)

    values = rasterize(grid, inside, 2)
    meta = {"phantom": "vessels", "seed": seed, "segments": len(segments)}
    return _image(values, grid, concentration, meta)


# -- SPEC strings: the phantom registry (kept importable from here) ----------------------------
from .phantom_specs import (  # noqa: E402  (the registry builds on the functions above)
    PHANTOM_SPEC_HELP,
    PHANTOMS,
    make_phantom,
    parse_phantom_spec,
    phantom_examples,
    register_phantom,
)

__all__ = [
    "PHANTOMS",
    "PHANTOM_SPEC_HELP",
    "concentration_phantom",
    "digit_phantom",
    "load_npz_images",
    "make_phantom",
    "parse_phantom_spec",
    "phantom_examples",
    "place_digit",
    "rasterize",
    "register_phantom",
    "resolution_phantom",
    "shape_phantom",
    "stroke_phantom",
    "two_points",
    "two_tubes",
    "vessel_phantom",
    "volume_phantom",
]
