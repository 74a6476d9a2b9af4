"""Training phantoms that cover what MPI groups scan: a weighted, seeded mix of object kinds.

A network trained on digits alone meets tubes, cones and points out of distribution; this
mix draws each training phantom from one of these kinds, with probabilities proportional to
their weights (:data:`DEFAULT_MIX` unless given):

``digit``
    An MNIST-style digit placed as in the DERnet paper (needs a source file; only its split).
``strokes``
    Two to four smooth random curves (digit-like, no file needed).
``points``
    Two to four small discs, 0.6-2.5 voxels across, the first two at a gap of 1.2-6 voxels,
    each at 0.4-1 of the maximum.
``tubes``
    Two parallel rods (a tube's slice along its axis), 0.6-3 voxels wide, 1.2-7 voxels apart
    (centre to centre), 30-90 % of the field of view long, at any orientation and position,
    each at 0.5-1 of the maximum; sometimes (one in four) a third rod elsewhere.
``cone``
    A cone's axial slice: a wedge from a tip radius of 0.2-1 voxel to a base radius of 1.5-5
    voxels over 40-90 % of the field of view, at any orientation.
``vessels``
    The centre slice of a random procedural vessel tree (2-4 generations), rotated at random.
``steps``
    Two to six squares or discs of 1.5-5 voxels at concentrations from 0.05 to 1 (the
    concentration phantom's idea at random positions and levels).

Sizes are in voxels of the target grid (the mean of its x and y voxel edges), so the mix
suits any 2D grid; positions keep the points and squares inside the field of view and the
other objects' centres (long tubes and cones may run out of it, as in a real scan). Shapes are
rasterised with 3 x 3 points per voxel (partial volume). Every phantom has a maximum of 1.
Everything is deterministic given the random generator. The fixed objects of the
out-of-distribution benchmark (the public phantoms' analogues, centred point and tube pairs
at set gaps, VesselMNIST3D slices) are never drawn: sizes, gaps and positions here are
continuous random, vessel trees procedural.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy import ndimage

from ..grid import Grid
from .phantoms import _subgrid, place_digit, stroke_phantom, vessel_phantom

__all__ = [
    "DEFAULT_MIX",
    "MIX_KINDS",
    "PhantomMix",
    "check_mix",
    "format_mix",
    "mix_phantom",
    "parse_mix",
]

#: the kinds a mix can draw (see the module docstring)
MIX_KINDS = ("digit", "strokes", "points", "tubes", "cone", "vessels", "steps")
#: the default weights: digits (the DERnet paper's data) a third, the rest spread over the
#: objects users scan
DEFAULT_MIX = {
    "digit": 0.35, "strokes": 0.1, "points": 0.12, "tubes": 0.15, "cone": 0.08,
    "vessels": 0.12, "steps": 0.08,
}  # fmt: skip


def check_mix(weights: Mapping[str, float] | None, name: str = "phantom_mix") -> dict:
    """``weights`` (None: :data:`DEFAULT_MIX`) as a dict of known kinds with finite weights
    >= 0 and a positive sum; ValueError naming the bad entry otherwise."""
    if weights is None:
        return dict(DEFAULT_MIX)
    if not isinstance(weights, Mapping):
        raise ValueError(f"{name} must map kinds to weights, got {weights!r}")
    out = {}
    for kind, w in weights.items():
        if kind not in MIX_KINDS:
            raise ValueError(f"{name}: unknown kind {kind!r}; kinds are {', '.join(MIX_KINDS)}")
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: the weight of {kind} must be a number, got {w!r}") from None
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"{name}: the weight of {kind} must be finite and >= 0, got {w}")
        out[kind] = w
    if sum(out.values()) <= 0:
        raise ValueError(f"{name}: the weights must have a positive sum, got {dict(weights)}")
    return out


def parse_mix(text: str, name: str = "phantom mix") -> dict:
    """``"digit=0.5 tubes=0.2"`` (spaces or commas between pairs) as checked weights."""
    out = {}
    for item in text.replace(",", " ").split():
        kind, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{name}: entries are KIND=WEIGHT, got {item!r}")
        out[kind.strip()] = value.strip()
    if not out:
        raise ValueError(f"{name}: give at least one KIND=WEIGHT ({', '.join(MIX_KINDS)})")
    return check_mix(out, name)


def format_mix(weights: Mapping[str, float]) -> str:
    """``kind=weight`` pairs, as the CLI takes them."""
    return " ".join(f"{k}={w:g}" for k, w in weights.items())


class _Canvas:
    """Supersampled coordinates of a 2D grid's x-y plane, in voxels from its centre."""

    def __init__(self, grid: Grid, supersample: int = 3, unit: float | None = None) -> None:
        if grid.shape[0] != 1:
            raise ValueError(f"phantom mix: needs a 2D grid (one voxel along z), got {grid.shape}")
        xx, yy, _ = _subgrid(grid, supersample)
        self.grid, self.s = grid, supersample
        self.voxel = _unit(grid, unit)
        self.x = (xx[0] - grid.center[2]) / self.voxel  # (Y s, X s)
        self.y = (yy[0] - grid.center[1]) / self.voxel
        self.half = np.array(grid.fov[1:][::-1]) / self.voxel / 2  # (x, y) half extents

    def reduce(self, fine: np.ndarray) -> np.ndarray:
        ny, nx = self.grid.shape[1:]
        return fine.reshape(ny, self.s, nx, self.s).mean(axis=(1, 3))

    def segment(self, a, b, radius: float) -> np.ndarray:
        """Inside the capsule of ``radius`` around the segment a-b (voxels)."""
        d = np.subtract(b, a, dtype=float)
        denom = float(d @ d) or 1e-12
        px, py = self.x - a[0], self.y - a[1]
        t = np.clip((px * d[0] + py * d[1]) / denom, 0, 1)
        return (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 <= radius**2

    def position(self, rng: np.random.Generator, margin: float) -> np.ndarray:
        """A random point at least ``margin`` voxels inside the field of view (the centre when
        the margin does not fit)."""
        room = np.maximum(self.half - margin, 0.0)
        return rng.uniform(-room, room)


def _direction(rng: np.random.Generator) -> np.ndarray:
    ang = rng.uniform(0, np.pi)
    return np.array([np.cos(ang), np.sin(ang)])


def _points(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    fine = np.zeros_like(cv.x)
    n = int(rng.integers(2, 5))
    d = rng.uniform(0.6, 2.5)
    gap = rng.uniform(1.2, 6.0)
    c = cv.position(rng, gap / 2 + d)
    u = _direction(rng) * gap / 2
    centres = [c - u, c + u] + [cv.position(rng, d) for _ in range(n - 2)]
    for p in centres:
        level = rng.uniform(0.4, 1.0)
        fine = np.maximum(fine, level * ((cv.x - p[0]) ** 2 + (cv.y - p[1]) ** 2 <= (d / 2) ** 2))
    return fine


def _tubes(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    fine = np.zeros_like(cv.x)
    d = rng.uniform(0.6, 3.0)
    gap = max(rng.uniform(1.2, 7.0), d * 1.05)
    length = rng.uniform(0.3, 0.9) * 2 * float(cv.half.min())
    u = _direction(rng)
    n = np.array([-u[1], u[0]])  # across the rods
    c = cv.position(rng, gap / 2 + d)
    rods = [(c + s * n * gap / 2, rng.uniform(0.5, 1.0)) for s in (-1, 1)]
    if rng.random() < 0.25:
        rods.append((cv.position(rng, d), rng.uniform(0.5, 1.0)))
    for p, level in rods:
        a, b = p - u * length / 2, p + u * length / 2
        fine = np.maximum(fine, level * cv.segment(a, b, d / 2))
    return fine


def _cone(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    length = rng.uniform(0.4, 0.9) * 2 * float(cv.half.min())
    r_tip, r_base = rng.uniform(0.2, 1.0), rng.uniform(1.5, 5.0)
    u = _direction(rng) * (1 if rng.random() < 0.5 else -1)
    c = cv.position(rng, length / 2 * 0.5)
    tip = c - u * length / 2
    px, py = cv.x - tip[0], cv.y - tip[1]
    along = px * u[0] + py * u[1]
    across = np.abs(-px * u[1] + py * u[0])
    radius = r_tip + (r_base - r_tip) * along / length
    return ((along >= 0) & (along <= length) & (across <= radius)).astype(float)


def _steps(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    fine = np.zeros_like(cv.x)
    n = int(rng.integers(2, 7))
    levels = rng.uniform(0.05, 1.0, size=n)
    levels[rng.integers(n)] = 1.0
    for level in levels:
        e = rng.uniform(1.5, 5.0)
        p = cv.position(rng, e / 2)
        if rng.random() < 0.5:
            inside = (np.abs(cv.x - p[0]) <= e / 2) & (np.abs(cv.y - p[1]) <= e / 2)
        else:
            inside = (cv.x - p[0]) ** 2 + (cv.y - p[1]) ** 2 <= (e / 2) ** 2
        fine = np.maximum(fine, level * inside)
    return fine


_FINE: dict[str, Callable[[_Canvas, np.random.Generator], np.ndarray]] = {
    "points": _points,
    "tubes": _tubes,
    "cone": _cone,
    "steps": _steps,
}


def _unit(grid: Grid, unit: float | None) -> float:
    if unit is None:
        return float(np.mean(grid.voxel_size[1:]))
    if not (np.isfinite(unit) and unit > 0):
        raise ValueError(f"phantom mix: unit must be a positive length (m), got {unit!r}")
    return float(unit)


def _vessels(grid: Grid, rng: np.random.Generator, unit: float | None = None) -> np.ndarray:
    radius = rng.uniform(0.5, 1.6) * _unit(grid, unit)
    values = vessel_phantom(
        grid, seed=int(rng.integers(2**62)), generations=int(rng.integers(2, 5)), radius=radius
    ).data[0, 0]
    values = ndimage.rotate(values, rng.uniform(0, 360), reshape=False, order=1, mode="constant")
    return np.clip(values, 0, None)


def mix_phantom(
    kind: str,
    grid: Grid,
    rng: np.random.Generator,
    digits: np.ndarray | None = None,
    unit: float | None = None,
) -> np.ndarray:
    """One phantom of ``kind`` (see the module docstring) on the 2D ``grid``: (z, y, x)
    float32 with maximum 1 (all zeros only if the object missed the grid). ``digits``:
    (n, h, w) images for ``digit`` (one is drawn at random). ``unit``: the length (m) the
    sizes in voxels refer to (default the grid's voxel; give a coarser grid's voxel to draw
    that grid's objects finely sampled, e.g. phantoms on a 5x finer grid)."""
    if kind == "digit":
        if digits is None or len(digits) == 0:
            raise ValueError("phantom mix: 'digit' needs digit images (a phantoms file)")
        values = place_digit(digits[rng.integers(len(digits))], grid, rng)[0]
    elif kind == "strokes":
        values = stroke_phantom(grid, seed=int(rng.integers(2**62))).data[0, 0]
    elif kind == "vessels":
        values = _vessels(grid, rng, unit)
    elif kind in _FINE:
        cv = _Canvas(grid, unit=unit)
        values = cv.reduce(_FINE[kind](cv, rng))
    else:
        raise ValueError(f"phantom mix: unknown kind {kind!r}; kinds are {', '.join(MIX_KINDS)}")
    peak = float(values.max())
    values = values / peak if peak > 0 else values
    return np.broadcast_to(values.astype(np.float32), grid.shape).copy()


class PhantomMix:
    """Draws training phantoms of the kinds in ``weights``, proportionally to them.

    Parameters
    ----------
    weights : mapping of str to float, or None
        Kind -> weight (None: :data:`DEFAULT_MIX`). Without digit images, ``digit`` is left
        out and the other weights are renormalised (ValueError if nothing is left).
    has_digits : bool
        Whether digit images will be given to :meth:`draw`.
    """

    def __init__(self, weights: Mapping[str, float] | None = None, has_digits: bool = True):
        self.weights = check_mix(weights)
        usable = {k: w for k, w in self.weights.items() if w > 0 and (has_digits or k != "digit")}
        if not usable:
            raise ValueError(
                f"phantom_mix {format_mix(self.weights)}: only digits, and no digit file given"
            )
        self.kinds = tuple(usable)
        p = np.array(list(usable.values()), dtype=float)
        self.p = p / p.sum()

    def kind(self, rng: np.random.Generator) -> str:
        """The kind of the next phantom (a mix of one kind draws no random number, so
        ``{"digit": 1}`` gives exactly the digits-only pairs of the same seed)."""
        if len(self.kinds) == 1:
            return self.kinds[0]
        return self.kinds[int(rng.choice(len(self.kinds), p=self.p))]

    def draw(
        self, grid: Grid, rng: np.random.Generator, digit: Callable[[], np.ndarray] | None = None
    ) -> tuple[np.ndarray, str]:
        """(values (z, y, x) with max 1, kind). ``digit()`` gives the next digit image (the
        caller decides the order, e.g. every image of a split once before any repeats)."""
        kind = self.kind(rng)
        if kind == "digit":
            if digit is None:
                raise ValueError("phantom mix: 'digit' drawn but no digit images given")
            values = place_digit(digit(), grid, rng)
            return values.astype(np.float32), kind
        return mix_phantom(kind, grid, rng), kind
