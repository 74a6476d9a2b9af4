"""The memory limit for reads (and simulations): refuse before allocating, say how to select less.

The limit is, in this order of precedence:

1. the value given to :func:`set_memory_limit` (bytes; ``None`` restores the default);
2. the environment variable ``NAPARI_MPI_MEMORY_LIMIT`` (bytes, or with a suffix ``K``, ``M``,
   ``G``, ``T``: ``"8G"`` is 8 GiB);
3. half of the machine's physical memory (:data:`DEFAULT_FRACTION`), or 4 GiB where that
   cannot be found out.
"""

from __future__ import annotations

import os

#: Share of the physical memory a single read may use by default.
DEFAULT_FRACTION = 0.5
#: The default where the physical memory cannot be found out (bytes).
FALLBACK_LIMIT = 4 * 2**30
ENV_VAR = "NAPARI_MPI_MEMORY_LIMIT"

_SUFFIXES = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_limit: int | None = None


def parse_size(text: str) -> int:
    """Parse ``"123"``, ``"512M"``, ``"8G"``, ``"1.5T"`` (binary units) into bytes.

    Raises
    ------
    ValueError
        If ``text`` is not a positive size.
    """
    raw = str(text).strip().lower().removesuffix("b").removesuffix("i")
    factor = 1
    if raw and raw[-1] in _SUFFIXES:
        factor = _SUFFIXES[raw[-1]]
        raw = raw[:-1]
    try:
        value = float(raw) * factor
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"expected a positive size such as 4G or 512M, got {text!r}")
    return int(value)


def _default_limit() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return FALLBACK_LIMIT
    return int(total * DEFAULT_FRACTION) if total > 0 else FALLBACK_LIMIT


def memory_limit() -> int:
    """The largest array (bytes) a read or simulation may allocate."""
    if _limit is not None:
        return _limit
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return parse_size(env)
        except ValueError as exc:
            raise ValueError(f"environment variable {ENV_VAR}: {exc}") from None
    return _default_limit()


def set_memory_limit(nbytes: int | str | None) -> None:
    """Set the memory limit (bytes, or a size such as ``"8G"``); ``None`` restores the default."""
    global _limit
    _limit = None if nbytes is None else parse_size(str(nbytes))


def format_bytes(nbytes: float) -> str:
    """``1.5 GiB``-style text for a number of bytes."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} PiB"  # pragma: no cover


def over_limit(nbytes: float, what: str, how_to_reduce: str) -> str | None:
    """A message when ``nbytes`` exceeds the memory limit, else None.

    Parameters
    ----------
    nbytes : float
        Size of the allocation.
    what : str
        What would be allocated (``"the system matrix (1200 rows x 40000 voxels)"``).
    how_to_reduce : str
        How to select less (``"pass min_frequency/max_frequency or snr_threshold"``).
    """
    limit = memory_limit()
    if nbytes <= limit:
        return None
    return (
        f"{what} needs {format_bytes(nbytes)}, more than the memory limit of "
        f"{format_bytes(limit)}; {how_to_reduce}, or raise the limit "
        f"(napari_mpi.io.set_memory_limit or the environment variable {ENV_VAR}, e.g. "
        f"{ENV_VAR}=64G)"
    )
