"""The one registry of reconstruction methods: the CLI, the widgets and the benchmarks list the
same entries, with the same parameters."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..progress import Progress
from ..system_matrix import SystemMatrix, check_system_matrix


@dataclass(frozen=True)
class Param:
    """One parameter of a method.

    Attributes
    ----------
    name : str
        Keyword argument name (also the CLI option ``--name`` with ``_`` as ``-``).
    kind : type or str
        ``float``, ``int``, ``bool`` or ``"choice"``.
    default : object
        Default value (None where the parameter is optional).
    help : str
        One line for the CLI and widget tooltips, with units.
    minimum, maximum : float, optional
        Allowed range (inclusive).
    choices : tuple of str
        Allowed values of a ``"choice"``.
    """

    name: str
    kind: Any
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any, method: str) -> Any:
        """Convert and validate ``value``; ValueError naming the method and parameter."""
        if value is None:
            if self.default is None:
                return None
            raise ValueError(f"{method}: parameter '{self.name}' must not be None")
        try:
            if self.kind is bool:
                words = {"true": True, "false": False, "1": True, "0": False}
                words.update({"yes": True, "no": False})
                if isinstance(value, str):
                    value = words[value.strip().lower()]  # KeyError: not a boolean word
                elif isinstance(value, bool | np.bool_) or value in (0, 1):
                    value = bool(value)
                else:
                    raise ValueError
            elif self.kind is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                value = int(value)
            elif self.kind is float:
                value = float(value)
            else:
                value = str(value)
        except (TypeError, ValueError, KeyError):
            raise ValueError(
                f"{method}: parameter '{self.name}' expects {self._kind_name()}, got {value!r}"
            ) from None
        if self.kind is float and not np.isfinite(value):
            raise ValueError(f"{method}: parameter '{self.name}' must be finite, got {value}")
        if self.choices and value not in self.choices:
            raise ValueError(
                f"{method}: parameter '{self.name}' must be one of {list(self.choices)}, "
                f"got {value!r}"
            )
        if self.minimum is not None and value < self.minimum:
            raise ValueError(
                f"{method}: parameter '{self.name}' must be >= {self.minimum}, got {value}"
            )
        if self.maximum is not None and value > self.maximum:
            raise ValueError(
                f"{method}: parameter '{self.name}' must be <= {self.maximum}, got {value}"
            )
        return value

    def _kind_name(self) -> str:
        if self.kind == "choice":
            return f"one of {list(self.choices)}"
        return {bool: "true/false", int: "an integer", float: "a number"}.get(self.kind, "text")


Solve = Callable[..., Generator[Progress, None, np.ndarray]]


@dataclass(frozen=True)
class Method:
    """A registered reconstruction method.

    ``solve(system_matrix, measurements, **params)`` is a generator yielding Progress and
    returning images of shape (frames, voxels), real, non-negative.
    """

    name: str
    title: str
    description: str
    params: tuple[Param, ...]
    solve: Solve
    kind: str = "classical"
    reference: str = ""
    order: int = 100
    extra: dict = field(default_factory=dict)

    def check_params(self, params: dict) -> dict:
        """All parameters with defaults filled in, validated; unknown names are refused."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"{self.name}: unknown parameter(s) {unknown}; it takes {sorted(known)}"
            )
        return {name: p.check(params.get(name, p.default), self.name) for name, p in known.items()}


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (a name may be registered once)."""
    if method.name in _REGISTRY:
        raise ValueError(f"method '{method.name}' is registered already")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    """A registered method by name; ValueError listing the methods when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown reconstruction method '{name}'; choose one of {sorted(_REGISTRY)}"
        ) from None


def methods() -> list[Method]:
    """Every registered method: by ``order`` (ART first), then by registration."""
    return sorted(_REGISTRY.values(), key=lambda m: m.order)


def check_inputs(system_matrix: SystemMatrix, measurements: np.ndarray) -> np.ndarray:
    """Measurements as a (frames, rows) complex array matching the system matrix, or ValueError."""
    check_system_matrix(system_matrix)
    u = np.asarray(measurements)
    if u.ndim == 1:
        u = u[np.newaxis]
    if u.ndim != 2:
        raise ValueError(f"measurements must be (frames, rows) or (rows,), got shape {u.shape}")
    if u.shape[0] == 0:
        raise ValueError("measurements: the frame selection is empty")
    if u.shape[1] != system_matrix.num_rows:
        raise ValueError(
            f"measurements have {u.shape[1]} rows but the system matrix has "
            f"{system_matrix.num_rows}: read them with the same frequency selection "
            "(MDFFile.measurements(system_matrix))"
        )
    if not np.all(np.isfinite(u)):
        bad = np.unique(np.nonzero(~np.isfinite(u))[0])
        raise ValueError(
            f"measurements contain NaN or infinite values (frames {bad[:10].tolist()})"
        )
    return u
