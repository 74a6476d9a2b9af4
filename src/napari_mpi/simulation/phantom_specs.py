"""The one registry of phantoms: name, parameters (with units and defaults) and help.

:func:`make_phantom` (SPEC strings ``NAME:key=value,...``), the SPEC help shown by the CLI
(:data:`PHANTOM_SPEC_HELP`) and the Simulation widget's examples (:func:`phantom_examples`)
are all generated from :data:`PHANTOMS`; adding a phantom is one :func:`register_phantom` call.
Lengths are given in mm in a SPEC and passed to the builders in m.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..grid import Grid
from ..image import MPIImage
from . import phantoms as _ph

#: parameter kinds: a length in mm (passed on in m), a number, an integer, text, a 0/1 flag
KINDS = ("mm", "float", "int", "str", "bool")


@dataclass(frozen=True)
class PhantomParam:
    """One SPEC parameter: ``name`` (also the builder's keyword unless ``arg`` says otherwise),
    ``kind`` (one of :data:`KINDS`), ``default`` (in the SPEC's units; None: the builder's)
    and whether a SPEC must give it (``required``)."""

    name: str
    kind: str
    default: object = None
    required: bool = False
    arg: str | None = None

    def parse(self, text: str, spec: str) -> object:
        """The builder's value of a SPEC value (mm -> m); ValueError naming the parameter."""
        if self.kind == "str":
            return text
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"phantom SPEC '{spec}': {self.name} must be a number") from None
        if self.kind == "mm":
            return value * 1e-3
        if self.kind == "int":
            return int(value)
        if self.kind == "bool":
            return bool(int(value))
        return value

    def builder_default(self) -> object:
        if self.default is None:
            return None
        return self.default * 1e-3 if self.kind == "mm" else self.default


@dataclass(frozen=True)
class PhantomKind:
    """A registered phantom.

    Attributes
    ----------
    name : str
        The SPEC name.
    build : callable
        ``build(grid, **params) -> MPIImage`` (lengths in m), ``concentration`` included.
    params : tuple of PhantomParam
        Its SPEC parameters (``concentration`` is added to every phantom).
    help : str
        What it is, a few words.
    example : str or None
        A SPEC for the Simulation widget's menu (None: not offered there, e.g. needs a file).
    title : str
        The widget's menu entry.
    """

    name: str
    build: Callable[..., MPIImage]
    params: tuple[PhantomParam, ...]
    help: str
    example: str | None = None
    title: str = ""

    def usage(self) -> str:
        """``NAME:key=default,...[,optional=...]`` as in the help."""
        required = [p for p in self.params if p.required]
        optional = [p for p in self.params if not p.required]

        def show(p: PhantomParam) -> str:
            if p.default is not None:
                return f"{p.name}={_fmt(p.default)}"
            return f"{p.name}={_placeholder(p)}"

        text = self.name
        if required:
            text += ":" + ",".join(show(p) for p in required)
        if optional:
            inner = ",".join(show(p) for p in optional)
            text += f"[,{inner}]" if required else f"[:{inner}]"
        return text


def _placeholder(p: PhantomParam) -> str:
    if p.name == "path":
        return "FILE.npz"
    return {"mm": "MM", "int": "N", "str": "TEXT", "float": "X", "bool": "0|1"}[p.kind]


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


#: every phantom, by SPEC name, in the order of the help
PHANTOMS: dict[str, PhantomKind] = {}

_CONCENTRATION = PhantomParam("concentration", "float", 1.0)


def register_phantom(kind: PhantomKind) -> PhantomKind:
    """Add a phantom to the registry (a name once)."""
    if kind.name in PHANTOMS:
        raise ValueError(f"phantom '{kind.name}' is registered already")
    PHANTOMS[kind.name] = kind
    return kind


def parse_phantom_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``NAME:key=value,...`` into the name and its parameters (as strings)."""
    name, _, rest = spec.strip().partition(":")
    params: dict[str, str] = {}
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"phantom SPEC '{spec}': expected key=value, got '{item}'")
            params[key.strip()] = value.strip()
    return name.strip(), params


def make_phantom(spec: str, grid: Grid) -> MPIImage:
    """Build a phantom from a SPEC string on ``grid`` (see :data:`PHANTOM_SPEC_HELP`)."""
    name, given = parse_phantom_spec(spec)
    kind = PHANTOMS.get(name)
    if kind is None:
        raise ValueError(f"phantom SPEC '{spec}': unknown phantom '{name}'\n{phantom_spec_help()}")
    params = (*kind.params, _CONCENTRATION)
    known = {p.name for p in params}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"phantom SPEC '{spec}': unknown parameter(s) {unknown} for '{name}'")
    kwargs = {}
    for p in params:
        if p.name in given:
            kwargs[p.arg or p.name] = p.parse(given[p.name], spec)
        elif p.required:
            raise ValueError(f"phantom SPEC '{spec}': {name} needs {p.name}={_placeholder(p)}")
        elif p.default is not None:
            kwargs[p.arg or p.name] = p.builder_default()
    out = kind.build(grid, **kwargs)
    out.metadata["spec"] = spec
    return out


def phantom_spec_help() -> str:
    """The SPEC help, one line per phantom (generated from :data:`PHANTOMS`)."""
    lines = [
        "Phantom SPEC: NAME or NAME:key=value,key=value (lengths in mm, concentration in mmol/L)."
    ]
    usages = [(kind.usage(), kind.help) for kind in PHANTOMS.values()]
    width = max(len(u) for u, _ in usages)
    lines += [f"  {u:<{width}}  {h}" for u, h in usages]
    lines.append("  Every phantom also takes concentration=VALUE (default 1).")
    return "\n".join(lines)


def phantom_examples() -> dict[str, str]:
    """The Simulation widget's menu: {title: SPEC} of every phantom with an example."""
    return {k.title or k.name: k.example for k in PHANTOMS.values() if k.example is not None}


# -- the built-in phantoms ------------------------------------------------------------------
def _two_points(grid, gap, axis="x", diameter=None, concentration=1.0):
    return _ph.two_points(grid, gap, axis, diameter, concentration)


def _digit(grid, path, index=None, seed=0, key=None, concentration=1.0, place=True):
    return _ph.digit_phantom(path, grid, index, seed, key, concentration, place)


def _volume(grid, path, index=0, key=None, concentration=1.0):
    return _ph.volume_phantom(path, grid, index, key, concentration)


P = PhantomParam
for _kind in (
    PhantomKind(
        "two-points",
        _two_points,
        (P("gap", "mm", required=True), P("axis", "str", "x"), P("diameter", "mm")),
        "two spheres, centres gap mm apart (diameter: one voxel)",
        "two-points:gap=6,diameter=1.5",
        "two points",
    ),
    PhantomKind(
        "two-tubes",
        lambda grid, gap, diameter=1.2e-3, axis="x", concentration=1.0: _ph.two_tubes(
            grid, gap, diameter, axis, concentration
        ),
        (P("gap", "mm", required=True), P("diameter", "mm", 1.2), P("axis", "str", "x")),
        "two parallel tubes, edge-to-edge gap mm",
        "two-tubes:gap=2",
        "two tubes",
    ),
    PhantomKind(
        "shape",
        _ph.shape_phantom,
        (P("length", "mm", 20.0), P("tip", "mm", 0.5, arg="tip_radius"),
         P("base", "mm", 5.0, arg="base_radius")),
        "cone (public shape phantom)",
        "shape",
        "shape (cone)",
    ),
    PhantomKind(
        "resolution",
        _ph.resolution_phantom,
        (P("diameter", "mm", 1.0), P("length", "mm", 18.0)),
        "fanning tubes (public resolution phantom)",
        "resolution",
        "resolution",
    ),
    PhantomKind(
        "concentration",
        _ph.concentration_phantom,
        (P("edge", "mm", 3.0),),
        "cubes of 8 concentrations (public phantom)",
        "concentration",
        "concentration",
    ),
    PhantomKind(
        "strokes",
        _ph.stroke_phantom,
        (P("seed", "int", 0), P("strokes", "int")),
        "digit-like strokes (no file needed)",
        "strokes:seed=0",
        "strokes (digit-like)",
    ),
    PhantomKind(
        "vessels",
        _ph.vessel_phantom,
        (P("seed", "int", 0), P("generations", "int", 3)),
        "3D vessel tree (no file needed)",
        "vessels:seed=0",
        "vessels",
    ),
    PhantomKind(
        "digit",
        _digit,
        (P("path", "str", required=True), P("index", "int"), P("seed", "int", 0),
         P("key", "str"), P("place", "bool", 1)),
        "MNIST-style digit, DERnet placement",
    ),
    PhantomKind(
        "volume",
        _volume,
        (P("path", "str", required=True), P("index", "int", 0), P("key", "str")),
        "MedMNIST-style volume, resized",
    ),
):  # fmt: skip
    register_phantom(_kind)
del _kind, P

#: the SPEC help (generated from the registry at import; :func:`phantom_spec_help` is live)
PHANTOM_SPEC_HELP = phantom_spec_help()
