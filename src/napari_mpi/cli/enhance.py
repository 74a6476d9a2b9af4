"""``napari-mpi enhance IN.mdf --method NAME [--model DIR] -o OUT.mdf``.

Reads a 3D MDF reconstruction, runs a registered enhancement method (``task="enhance"``, see
``napari-mpi methods --task enhance``) on it with a progress bar and writes the result as an
MDF reconstruction on the same grid. The method options are generated from the registry's
parameters, so a newly registered method's parameters appear here at once: ``--NAME VALUE``
for numbers, text and choices (``--model DIR`` is a learned method's ``model``), and
``--NAME`` / ``--no-NAME`` for a true/false parameter (``--allow-mismatch``).

Nothing is written unless the whole enhancement succeeds: the inputs and the output path are
checked first, the output is written only at the end, and the writer publishes it atomically
(:mod:`napari_mpi.io._safe_write`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from ._common import CLIError, ProgressBar
from .reconstruct import _method_params, option_help, parse_frames

#: the command's own options; a method parameter of one of these names is ``--param-NAME``
_OWN_OPTIONS = {
    "method",
    "frames",
    "degradation",
    "output",
    "overwrite",
    "quiet",
    "help",
    "uncertainty",
}
#: metavars of the method options by parameter kind (``model`` is a folder)
_METAVARS = {int: "N", float: "X", str: "TEXT", "choice": "CHOICE"}


def _method_option(name: str) -> str:
    flag = name.replace("_", "-")
    return f"--param-{flag}" if name in _OWN_OPTIONS else f"--{flag}"


def enhancement_method(name: str):
    """The registered enhancement method ``name``; CLIError listing the enhancement methods,
    or saying that ``name`` is a reconstruction method."""
    from ..recon.registry import get_method, methods

    names = ", ".join(m.name for m in methods("enhance")) or "(none registered)"
    try:
        method = get_method(name)
    except ValueError:
        raise CLIError(
            f"--method: unknown enhancement method '{name}'; choose one of {names}"
        ) from None
    if method.task != "enhance":
        raise CLIError(
            f"--method: '{name}' is a reconstruction method (it turns a calibration and a "
            f"measurement into an image): run it with `napari-mpi reconstruct`; enhancement "
            f"methods are {names}"
        )
    return method


def _check_paths(src: Path, out: Path, overwrite: bool) -> None:
    """Refuse an output that is the input (also through a link) or exists without
    ``overwrite``, or whose folder is missing, before anything is read or computed."""
    from ..io._safe_write import check_target

    same = out.resolve() == src.resolve()
    if not same and out.exists() and src.exists():
        same = os.path.samefile(out, src)
    if same:
        raise CLIError(
            f"-o {out}: is the input file {src}; write the enhanced image to another file"
        )
    try:
        check_target(out, overwrite)
    except FileExistsError:
        raise CLIError(f"-o {out}: exists; pass --overwrite to replace it") from None
    except OSError as exc:  # a folder, or in a folder that does not exist
        text = str(exc.strerror or exc).removeprefix(f"{out}: ")
        raise CLIError(f"-o {out}: {text}") from None


def read_input(src: Path, out: Path, args: argparse.Namespace):
    """The input image (frames selected) and its acquisition (None when it has none).

    The output path is checked once the input is known to be an MDF reconstruction, before
    its voxels are read.
    """
    from ..image import MPIImage
    from ..io import MDFError, read_mdf

    with read_mdf(src) as f:
        if f.kind != "reconstruction":
            hint = {
                "calibration": "a system matrix",
                "measurement": "signals; reconstruct them first with `napari-mpi reconstruct`",
            }.get(f.kind, "no image data")
            raise CLIError(
                f"{src}: is a {f.kind} file ({hint}), not a reconstruction; napari-mpi "
                "enhance takes an MDF reconstruction holding a 3D image"
            )
        _check_paths(src, out, args.overwrite)
        frames, average = parse_frames(args.frames, f.num_frames)
        image = f.image()
        acquisition = None
        if not f.has_placeholder_acquisition:
            try:
                acquisition = f.acquisition
            except MDFError:
                acquisition = None  # a reconstruction may lack them; it is still an image
    data = image.data
    if frames is not None:
        data = data[frames]
    elif average:
        data = data.mean(axis=0, keepdims=True)
    return MPIImage(data, image.fov, image.center, metadata=dict(image.metadata)), acquisition


def _set_degradation(image, src: Path, text: str | None) -> None:
    """``--degradation`` over the file's own card; either is checked, naming where it came
    from. Without both, the method's default applies (the papers' scan)."""
    from ..enhance import Degradation

    if text is not None:
        try:
            image.metadata["degradation"] = Degradation.parse(text).to_dict()
        except ValueError as exc:
            raise CLIError(f"--degradation: {exc}") from None
    elif image.metadata.get("degradation") is not None:
        try:
            Degradation.from_dict(image.metadata["degradation"])
        except ValueError as exc:
            raise CLIError(
                f"{src}: its degradation card is unusable ({exc}); pass --degradation"
            ) from None


def _check_finite(image, src: Path) -> None:
    bad = ~np.isfinite(image.data)
    if bad.any():
        frames = np.flatnonzero(bad.reshape(image.num_frames, -1).any(axis=1))
        raise CLIError(
            f"{src}: {int(bad.sum())} NaN or infinite voxel(s) (frame(s) "
            f"{frames[:10].tolist()}); enhancement needs finite values: replace them first"
        )


def cmd_enhance(args: argparse.Namespace) -> int:
    from ..io import write_reconstruction
    from ..progress import run
    from ..recon.registry import iter_enhance

    method = enhancement_method(args.method)
    params = method.check_params(_method_params(args, method))
    src, out = Path(args.input), Path(args.output)
    spread = None  # where a sampler's per-voxel standard deviation goes (samples > 1)
    if int(params.get("samples", 1) or 1) > 1:
        spread = Path(args.uncertainty) if args.uncertainty else uncertainty_path(out)
        if spread.resolve() in (src.resolve(), out.resolve()):
            raise CLIError(f"--uncertainty {spread}: is the input or the output file")
        try:
            _check_paths(src, spread, args.overwrite)
        except CLIError as exc:
            raise CLIError(str(exc).replace("-o ", "--uncertainty ", 1)) from None
    image, acquisition = read_input(src, out, args)
    _set_degradation(image, src, args.degradation)
    _check_finite(image, src)
    try:
        result = run(iter_enhance(image, method.name, **params), ProgressBar(not args.quiet))
    except ValueError as exc:  # the method refuses this image (2D, too small, wrong model...)
        raise CLIError(f"{src}: {str(exc).strip() or type(exc).__name__}") from None
    same_grid = result.grid_shape == image.grid_shape and np.allclose(
        [result.fov, result.center], [image.fov, image.center], rtol=0, atol=1e-12
    )
    if not same_grid or result.num_frames != image.num_frames:
        raise CLIError(
            f"{method.name} returned {result!r} for the input {image!r}: not the same grid and "
            "frames; nothing was written"
        )
    warnings = result.metadata.get("warnings")
    if isinstance(warnings, list | tuple):  # e.g. a model mismatch allowed by --allow-mismatch
        for text in warnings:
            print(f"napari-mpi enhance: warning: {text}", file=sys.stderr)
        result.metadata["warnings"] = json.dumps([str(w) for w in warnings])
    previous = image.metadata.get("method")
    result.metadata.update({"input": str(src), "frames": args.frames})
    if previous is not None and previous != method.name:
        result.metadata["input_method"] = str(previous)
    for key in ("mdf_groups", "degradation"):
        if key in image.metadata:
            result.metadata.setdefault(key, image.metadata[key])
    uncertainty = result.metadata.pop("uncertainty", None)
    residual = result.metadata.get("dc_residual")
    if isinstance(residual, list | tuple):
        values = ", ".join(f"{float(r):.3f}" for r in residual[:8])
        more = ", ..." if len(residual) > 8 else ""
        print(f"degradation-consistency residual per frame: {values}{more}")
        result.metadata["dc_residual"] = json.dumps([float(r) for r in residual])
    write_reconstruction(out, result, overwrite=args.overwrite, acquisition=acquisition)
    if uncertainty is not None and spread is not None:
        uncertainty.metadata.update({"input": str(src), "mean_image": str(out)})
        write_reconstruction(spread, uncertainty, overwrite=args.overwrite)
        print(f"wrote {spread}: per-voxel standard deviation over the {method.name} samples")
    nz, ny, nx = result.grid_shape
    print(
        f"wrote {out}: {method.name} of {src}, {result.num_frames} frame(s), grid (x, y, z) "
        f"[{nx}, {ny}, {nz}], acquisition {'copied' if acquisition is not None else 'none'}"
    )
    return 0


def uncertainty_path(out: Path) -> Path:
    """Default file of the per-voxel standard deviation: ``OUT_uncertainty.mdf`` beside
    ``OUT.mdf``."""
    return out.with_name(f"{out.stem}_uncertainty{out.suffix or '.mdf'}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``enhance`` to the sub-commands, its method options from the registry."""
    from ..recon.registry import methods

    entries = methods("enhance")
    ep = sub.add_parser(
        "enhance",
        help="enhance (sharpen) a 3D MDF reconstruction and write an MDF reconstruction",
        description="Enhance a 3D MPI image stored as an MDF reconstruction; the result is "
        "written on the same grid. Methods and their options: `napari-mpi methods --task "
        "enhance`.",
    )
    ep.add_argument("input", metavar="IN.mdf", help="MDF reconstruction holding a 3D image")
    ep.add_argument(
        "--method",
        required=True,
        metavar="NAME",
        help=f"enhancement method: one of {', '.join(m.name for m in entries)}",
    )
    ep.add_argument(
        "--frames", default="all", help="all, mean, I or I..J (0-based, inclusive; default all)"
    )
    ep.add_argument(
        "--degradation",
        metavar="SPEC",
        help="the input's scan, for the PSF and the model check: papers, legacy, key=value "
        "pairs (z_step=3e-3,snr_db=20) or a card.json (default: the file's own card, else "
        "the papers' scan)",
    )
    ep.add_argument("-o", "--output", required=True, metavar="OUT.mdf", help="output MDF file")
    ep.add_argument("--overwrite", action="store_true", help="replace an existing output")
    ep.add_argument(
        "--uncertainty",
        metavar="STD.mdf",
        help="where the per-voxel standard deviation over the samples goes (diffusion "
        "methods with --samples > 1; default: OUT_uncertainty.mdf beside the output)",
    )
    ep.add_argument("--quiet", action="store_true", help="no progress display")
    group = ep.add_argument_group("method options (see `napari-mpi methods --task enhance`)")
    owners: dict[str, list] = {}
    for m in entries:
        for p in m.params:
            owners.setdefault(p.name, []).append(m)
    for name, ms in owners.items():
        text = option_help(name, ms).replace("%", "%%")
        kinds = {m.param(name).kind for m in ms}
        if kinds == {bool}:
            group.add_argument(
                _method_option(name),
                dest=f"p_{name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
            continue
        metavar = "DIR" if name == "model" else _METAVARS.get(next(iter(kinds)), "VALUE")
        choices = {m.param(name).choices for m in ms}
        if kinds == {"choice"} and len(choices) == 1:
            metavar = "{" + ",".join(next(iter(choices))) + "}"
        elif len(kinds) > 1:
            metavar = "VALUE"
        group.add_argument(_method_option(name), dest=f"p_{name}", metavar=metavar, help=text)
    ep.set_defaults(func=cmd_enhance)
