"""The ``napari-mpi`` command line.

Sub-commands
------------
info FILE [--json]
    Print what the MDF reader sees in a file.
simulate system-matrix | measurement | xspace
    Simulate MPI data (see ``napari-mpi simulate --help``).
reconstruct --calibration CAL --measurement MEAS --method NAME [options] -o OUT.mdf
    Reconstruct with a registered method; ``methods`` lists them with their parameters.
enhance IN.mdf --method NAME [--model DIR] [options] -o OUT.mdf
    Enhance a 3D reconstruction with a registered enhancement method, on the same grid.
demo [--out DIR]
    The main job on the embedded defaults: simulate the ``preclinical-2d`` calibration, write it
    as MDF, read it back and report. It grows as simulation and reconstruction land.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .._version import __version__
from . import demo, enhance, reconstruct, simulate, train
from ._common import CLIError
from .demo import DEMO_PARAMS, cmd_demo, demo_methods  # noqa: F401  (their old home)

EXIT_USAGE = 2
EXIT_BAD_INPUT = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def _format_info(summary: dict) -> str:
    lines = [f"{summary['path']}"]
    order = [
        ("kind", "kind"),
        ("version", "MDF version"),
        ("frames", "frames"),
        ("background_frames", "background frames"),
        ("channels", "receive channels"),
        ("frequencies", "frequencies per channel"),
        ("periods", "periods per frame"),
        ("time_domain", "stored in time domain"),
        ("grid_xyz", "grid (x, y, z)"),
        ("fov_m_xyz", "FOV (x, y, z) [m]"),
        ("center_m_xyz", "centre (x, y, z) [m]"),
        ("sampling_points", "sampling points"),
        ("bandwidth_hz", "bandwidth [Hz]"),
        ("drive_frequencies_hz", "drive frequencies [Hz]"),
        ("drive_strength_t", "drive strengths [T/mu0]"),
        ("gradient_t_per_m_xyz", "gradient (x, y, z) [T/m/mu0]"),
        ("study", "study"),
        ("experiment", "experiment"),
        ("scanner", "scanner"),
        ("topology", "topology"),
    ]
    for key, label in order:
        if key in summary and summary[key] is not None:
            value = summary[key]
            if isinstance(value, list):
                value = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
            lines.append(f"  {label:<30} {value}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from ..io import read_mdf

    with read_mdf(args.file) as f:
        summary = f.summary()
    if args.json:
        print(json.dumps(summary, indent=None if args.compact else 2))
    else:
        print(_format_info(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-mpi",
        description="Magnetic Particle Imaging: MDF files, simulation, reconstruction and "
        "enhancement.",
    )
    parser.add_argument("--version", action="version", version=f"napari-mpi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="print what the MDF reader sees in a file")
    info.add_argument("file", help="an MDF file (.mdf, .h5, .hdf5), v1 or v2")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--compact", action="store_true", help="with --json: on one line")
    info.set_defaults(func=cmd_info)

    demo.add_parser(sub)
    simulate.add_parser(sub)
    reconstruct.add_parsers(sub)
    enhance.add_parser(sub)
    train.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-mpi`` command; returns the exit status."""
    from ..io import MDFError

    parser = build_parser()
    words = train.method_first(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(words)
    args.argv = words
    command = " ".join(c for c in (args.command, getattr(args, "what", None)) if c)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"napari-mpi {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (
        MDFError, CLIError, FileNotFoundError, FileExistsError, ValueError, OSError, MemoryError
    ) as exc:  # fmt: skip
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"napari-mpi {command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
