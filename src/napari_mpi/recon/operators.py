"""Shared linear-algebra pieces: real-stacked system matrices, scaling, per-matrix caches."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..system_matrix import SystemMatrix

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MAX_ENTRIES = 8


def cached(sm: SystemMatrix, key: tuple, build: Callable[[], Any]) -> Any:
    """A precomputation for ``sm`` (factorisations, Gram matrices), kept while ``sm`` lives.

    Reconstructing many frames, or the same matrix again with the same parameters, reuses it.
    """
    store = _CACHE.setdefault(sm, {})
    if key not in store:
        if len(store) >= _MAX_ENTRIES:
            store.pop(next(iter(store)))
        store[key] = build()
    return store[key]


def has_cached(sm: SystemMatrix, key: tuple) -> bool:
    """Whether :func:`cached` holds ``key`` for ``sm``."""
    return key in _CACHE.get(sm, {})


def real_stack(matrix: np.ndarray, dtype=np.float64) -> np.ndarray:
    """[Re S; Im S], shape (2 M, N): the real system whose solutions are real images."""
    return np.concatenate([matrix.real, matrix.imag]).astype(dtype, copy=False)


def real_rhs(u: np.ndarray, dtype=np.float64) -> np.ndarray:
    """[Re u, Im u] of frames (F, M) as columns, shape (2 M, F)."""
    return np.concatenate([u.real, u.imag], axis=1).T.astype(dtype, copy=False)


def relative_lambda(frobenius2: float, num_voxels: int, lam: float) -> float:
    """The usual MPI normalisation: lambda_abs = lam * ||A||_F^2 / N."""
    return float(lam) * float(frobenius2) / num_voxels


def difference_operators(grid_shape: tuple[int, int, int]) -> list:
    """Forward differences along each axis with more than one voxel, as sparse (N, N) CSR
    matrices (Neumann boundary: the last difference along an axis is 0)."""
    from scipy import sparse

    n = int(np.prod(grid_shape))
    idx = np.arange(n).reshape(grid_shape)
    ops = []
    for axis, size in enumerate(grid_shape):
        if size < 2:
            continue
        head = np.take(idx, np.arange(size - 1), axis=axis).ravel()
        tail = np.take(idx, np.arange(1, size), axis=axis).ravel()
        rows = np.concatenate([head, head])
        cols = np.concatenate([head, tail])
        vals = np.concatenate([-np.ones(head.size), np.ones(head.size)])
        ops.append(sparse.csr_matrix((vals, (rows, cols)), shape=(n, n)))
    return ops
