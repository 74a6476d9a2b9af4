"""Apply a volume -> volume function in overlapping tiles with blended seams.

A network trained on 32^3 volumes (or any local operation) is applied to a larger volume tile
by tile; memory is the output and weight arrays (two floats per voxel) plus one tile's work.

Blending: along each axis a tile's weight is 0 for the ``halo`` voxels next to an edge it
shares with another tile, rises linearly over the rest of the overlap and is 1 inside (and at
the volume's own edges). The weights of neighbouring tiles add up to 1 where tiles overlap by
exactly ``overlap``; the result is the weighted mean. Voxels that get weight lie at least
``halo`` voxels inside their tile, so an operation that looks no further than ``halo`` voxels
(e.g. a filter of that radius, zero outside the volume) gives exactly the untiled result.

``fn`` may also return several maps per tile (shape ``(C, tz, ty, tx)``: e.g. a sampler's mean
and second moment, each blended the same way), see the tile's place in the volume
(``pass_index=True``: ``fn(tile, index)``, ``index`` the tile's three slices, e.g. to crop one
noise volume drawn for the whole volume) and be a generator that yields
:class:`~napari_mpi.progress.Progress` and returns its result (a long per-tile computation
then reports, and can be cancelled, inside a tile).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Sequence

import numpy as np

from ..progress import Progress, run

VolumeFn = Callable[[np.ndarray], np.ndarray]


def _triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    values = (value,) * 3 if np.isscalar(value) else tuple(value)
    if len(values) != 3 or any(int(v) != v or v < 0 for v in values):
        raise ValueError(f"tiling: {name} must be a non-negative integer or three, got {value!r}")
    return tuple(int(v) for v in values)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of ``tile`` voxels covering ``length`` with >= ``overlap`` shared.

    The last tile ends at the volume's end (it may overlap its neighbour by more); a volume no
    longer than a tile is one tile.
    """
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def _ramp(size: int, ramp_left: bool, ramp_right: bool, overlap: int, halo: int) -> np.ndarray:
    """The 1D blending weights of a tile of ``size`` voxels."""
    w = np.ones(size)
    r = overlap - 2 * halo  # voxels of linear rise
    rise = np.concatenate([np.zeros(halo), np.arange(1, r + 1) / (r + 1)])
    n = min(rise.size, size)
    if ramp_left:
        w[:n] = np.minimum(w[:n], rise[:n])
    if ramp_right:
        w[size - n :] = np.minimum(w[size - n :], rise[:n][::-1])
    return w


def iter_tiled(
    volume: np.ndarray,
    fn: VolumeFn,
    tile: int | Sequence[int] = 32,
    overlap: int | Sequence[int] = 8,
    halo: int | Sequence[int] = 2,
    pass_index: bool = False,
) -> Generator[Progress, None, np.ndarray]:
    """Apply ``fn`` to a (z, y, x) volume in overlapping tiles, yielding progress per tile.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x)
        Finite values; any size (smaller than a tile along an axis: one tile of that size).
    fn : callable
        Maps a (tz, ty, tx) float32 array to an array of the same shape, or of shape
        (C, tz, ty, tx); or is a generator function yielding Progress and returning that.
    tile : int or (int, int, int)
        Tile size in voxels (z, y, x); default 32 (the training volumes).
    overlap : int or (int, int, int)
        Voxels shared by neighbouring tiles, at least 2 * halo + 1 and less than the tile
        (checked along axes longer than a tile).
    halo : int or (int, int, int)
        Voxels next to a shared tile edge that get no weight (the reach of ``fn``'s edge
        effects).

    Returns
    -------
    ndarray, shape (z, y, x), float32
        The blended result.
    """
    v = np.asarray(volume)
    if v.ndim != 3 or v.size == 0:
        raise ValueError(f"tiling: expects a non-empty (z, y, x) volume, got shape {v.shape}")
    tiles, overlaps, halos = (
        _triple(tile, "tile"),
        _triple(overlap, "overlap"),
        _triple(halo, "halo"),
    )
    for a, (t, o, h) in enumerate(zip(tiles, overlaps, halos, strict=True)):
        if t < 1 or (v.shape[a] > t and not 2 * h + 1 <= o < t):
            raise ValueError(
                f"tiling: along axis {a} need tile > overlap >= 2 * halo + 1, got tile {t}, "
                f"overlap {o}, halo {h}"
            )
    starts = [tile_starts(n, t, o) for n, t, o in zip(v.shape, tiles, overlaps, strict=True)]
    sizes = [min(n, t) for n, t in zip(v.shape, tiles, strict=True)]
    out = None
    weight = np.zeros(v.shape, dtype=np.float64)
    total = int(np.prod([len(s) for s in starts]))
    done = 0
    for z0 in starts[0]:
        for y0 in starts[1]:
            for x0 in starts[2]:
                index = tuple(slice(s, s + n) for s, n in zip((z0, y0, x0), sizes, strict=True))
                piece = np.ascontiguousarray(v[index], dtype=np.float32)
                result = fn(piece, index) if pass_index else fn(piece)
                if inspect.isgenerator(result):
                    result = yield from _inner(result, done, total)
                result = np.asarray(result)
                if result.shape[-3:] != tuple(sizes) or result.ndim not in (3, 4):
                    raise ValueError(
                        f"tiling: the function returned shape {result.shape} for a tile of "
                        f"{tuple(sizes)}; it must keep the shape (or add one leading axis)"
                    )
                if out is None:
                    out = np.zeros(result.shape[:-3] + v.shape, dtype=np.float64)
                elif out.shape[:-3] != result.shape[:-3]:
                    raise ValueError("tiling: the function returned different leading axes")
                w = np.ones(())
                for a, s in enumerate((z0, y0, x0)):
                    ramp = _ramp(sizes[a], s > 0, s + sizes[a] < v.shape[a], overlaps[a], halos[a])
                    shape = [1, 1, 1]
                    shape[a] = sizes[a]
                    w = w * ramp.reshape(shape)
                out[(..., *index)] += w * result
                weight[index] += w
                done += 1
                yield Progress(done, total, f"tile {done} of {total}")
    np.divide(out, weight, out=out, where=np.broadcast_to(weight > 0, out.shape))
    del weight
    return out.astype(np.float32)


def _inner(work, done: int, total: int):
    """Drive a tile's generator, passing its progress on within the tile's share."""
    while True:
        try:
            p = next(work)
        except StopIteration as stop:
            return stop.value
        frac = p.fraction
        yield Progress(done * 1000 + int(frac * 1000), total * 1000,
                       f"tile {done + 1} of {total}: {p.message}", p.info)  # fmt: skip


def apply_tiled(
    volume: np.ndarray,
    fn: VolumeFn,
    tile: int | Sequence[int] = 32,
    overlap: int | Sequence[int] = 8,
    halo: int | Sequence[int] = 2,
) -> np.ndarray:
    """:func:`iter_tiled` run to the end: the blended (z, y, x) float32 result."""
    return run(iter_tiled(volume, fn, tile, overlap, halo))
