"""The one registry of methods, for reconstruction and for enhancement.

Every method is a :class:`Method` with a ``task``:

- ``"reconstruct"``: ``solve(system_matrix, measurements, **params)`` is a generator yielding
  :class:`~napari_mpi.progress.Progress` and returning images of shape (frames, voxels), real and
  non-negative; run it with :func:`napari_mpi.reconstruct` / :func:`napari_mpi.iter_reconstruct`.
- ``"enhance"``: ``solve(image, **params)`` takes an :class:`~napari_mpi.MPIImage` (image ->
  image: deconvolution, denoising, super-resolution) and returns an ``MPIImage`` or an array of
  the image's shape (frames, z, y, x) or (z, y, x); run it with :func:`enhance` /
  :func:`iter_enhance`.

The CLI (``napari-mpi methods``, ``napari-mpi reconstruct``), the widgets and the benchmarks
list the same entries with the same parameters.

Registering a method
--------------------
Write a module that calls :func:`register` at import time, e.g. for an enhancement
(``Method``, ``Param`` and ``register`` come from this module)::

    def iter_my_deconvolution(image, iterations=10):
        ...                                  # yield Progress(k, iterations, "...") per step
        return deblurred                     # MPIImage or array shaped like image.data

    register(Method(
        name="my-deconvolution", task="enhance", title="My deconvolution",
        description="...", solve=iter_my_deconvolution,
        params=(Param("iterations", int, 10, "iterations", 1, 10000),),
    ))

and add the module's import path to :data:`BUILTIN_MODULES` (with the names it registers) so
that :func:`methods` and :func:`get_method` find it without importing it eagerly: importing
``napari_mpi`` stays light, and a method's module (torch, the simulator, ...) is imported the
first time the method is asked for. Code outside the package may import its module and
call :func:`register` itself.
"""

from __future__ import annotations

import importlib
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
    auto : bool
        The value "auto" is accepted too (the method chooses; e.g. Kaczmarz's lam by GCV).
    normalization : str, optional
        How a regularisation weight is scaled before use (see
        :mod:`napari_mpi.recon.normalization`): the name of the method's parameter that picks
        the normalisation (e.g. ``"normalization"``), or a fixed :class:`Normalization` value.
    """

    name: str
    kind: Any
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    normalization: str | None = None
    auto: bool = False

    def check(self, value: Any, method: str) -> Any:
        """Convert and validate ``value``; ValueError naming the method and parameter."""
        if value is None:
            if self.default is None:
                return None
            raise ValueError(f"{method}: parameter '{self.name}' must not be None")
        if self.auto and isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
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
        names = {bool: "true/false", int: "an integer", float: "a number"}
        text = names.get(self.kind, "text")
        return f"{text} or 'auto'" if self.auto else text


Solve = Callable[..., Generator[Progress, None, np.ndarray]]


#: the tasks a method can have
TASKS = ("reconstruct", "enhance")


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes
    ----------
    name, title, description : str
        Registry name (CLI ``--method``), a title for menus, one sentence.
    params : tuple of Param
        Every parameter with its default, range and help.
    solve : callable
        ``task="reconstruct"``: ``solve(system_matrix, measurements, **params)``, a generator
        yielding Progress and returning images (frames, voxels), real, non-negative.
        ``task="enhance"``: ``solve(image, **params)``, a generator returning an MPIImage or
        an array of the image's shape.
    task : str
        ``"reconstruct"`` or ``"enhance"``.
    kind : str
        ``"classical"`` or ``"learned"``.
    selects_rows : bool
        Reconstruction only: the method reads the rows its model needs from the calibration
        itself, so the frequency selection of the classical methods is not applied to it.
    reference, order, extra
        Citation, position in lists (lower first), anything else.
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
    task: str = "reconstruct"
    selects_rows: bool = False

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(
                f"method '{self.name}': task must be one of {TASKS}, got {self.task!r}"
            )

    def param(self, name: str) -> Param:
        """The parameter called ``name``; KeyError when the method has none."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no parameter '{name}'")

    def param_help(self, p: Param) -> str:
        """``p.help`` with the scaling of a regularisation weight spelled out."""
        if p.normalization is None:
            return p.help
        from .normalization import describe

        names = [q.name for q in self.params]
        if p.normalization in names:
            chooser = self.param(p.normalization)
            return f"{p.help}; {describe(chooser.default)} by default ({p.normalization})"
        return f"{p.help}; {describe(p.normalization)}"

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

#: the package's own method modules and the names each registers, imported on first use (so
#: ``import napari_mpi`` does not import torch or the simulator). Add an entry here when you
#: add a module under ``src/napari_mpi`` that registers methods.
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "napari_mpi.recon.kaczmarz": ("kaczmarz",),
    "napari_mpi.recon.admm": ("admm",),
    "napari_mpi.recon.cgnr": ("cgnr",),
    "napari_mpi.recon.pinv": ("pinv",),
    "napari_mpi.recon.ppmpi": ("ppmpi",),
    "napari_mpi.recon.dernet": ("dernet",),
    "napari_mpi.recon.cascaded": ("cascaded",),
    "napari_mpi.recon.dip": ("dip",),
    "napari_mpi.recon.admmnet": ("admm-net",),
    "napari_mpi.enhance.methods": ("richardson-lucy", "wiener"),
    "napari_mpi.enhance.learned": ("csdnet", "unet3d", "edsr3d", "rcan3d", "rrdb3d", "esrgan3d"),
    "napari_mpi.enhance.dcgan": ("dcgan",),
    "napari_mpi.enhance.diffusion": ("dccdm", "ddpm3d"),
}
_LOADED: set[str] = set()


def _load(modules) -> None:
    for module in modules:
        if module not in _LOADED:
            importlib.import_module(module)
            _LOADED.add(module)


def register(method: Method) -> Method:
    """Add a method to the registry (a name may be registered once, whatever its task)."""
    if method.name in _REGISTRY:
        raise ValueError(f"method '{method.name}' is registered already")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str, task: str | None = None) -> Method:
    """A registered method by name (of ``task`` when given); ValueError listing the methods
    when unknown. Imports only the module that registers ``name``."""
    if name not in _REGISTRY:
        _load([m for m, names in BUILTIN_MODULES.items() if name in names] or BUILTIN_MODULES)
    method = _REGISTRY.get(name)
    if method is None or (task is not None and method.task != task):
        what = {"reconstruct": "reconstruction ", "enhance": "enhancement "}.get(task or "", "")
        raise ValueError(
            f"unknown {what}method '{name}'; choose one of {[m.name for m in methods(task)]}"
        )
    return method


def methods(task: str | None = None) -> list[Method]:
    """Every registered method (of ``task`` when given: "reconstruct" or "enhance"), by
    ``order`` (ART first), then by registration."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    _load(BUILTIN_MODULES)
    return sorted(
        (m for m in _REGISTRY.values() if task is None or m.task == task), key=lambda m: m.order
    )


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


def iter_enhance(image, method: str, **params) -> Generator[Progress, None, Any]:
    """Enhance an image with a registered ``task="enhance"`` method, yielding progress.

    Parameters
    ----------
    image : MPIImage
        The input image (frames, z, y, x) in physical space.
    method : str
        Name of an enhancement method (``napari_mpi.methods("enhance")`` lists them).
    **params
        The method's parameters (defaults filled in, validated).

    Returns
    -------
    MPIImage
        On the input's grid unless the method returns an MPIImage of its own; the method and
        parameters in ``metadata``.
    """
    from ..image import MPIImage

    entry = get_method(method, task="enhance")
    checked = entry.check_params(params)
    out = yield from entry.solve(image, **checked)
    meta = {**dict(getattr(image, "metadata", {}) or {}), "method": method, "params": checked}
    if isinstance(out, MPIImage):
        out.metadata.update({"method": method, "params": checked})
        return out
    data = np.asarray(out, dtype=np.float32)
    if data.ndim == 3:
        data = data[np.newaxis]
    return MPIImage(data, image.fov, image.center, metadata=meta)


def enhance(image, method: str, **params):
    """Enhance an image (see :func:`iter_enhance`); runs to the end and returns the MPIImage."""
    from ..progress import run

    return run(iter_enhance(image, method, **params))
