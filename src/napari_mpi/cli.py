"""The ``napari-mpi`` command line.

Sub-commands
------------
info FILE [--json]
    Print what the MDF reader sees in a file.
demo [--out DIR]
    The main job on the embedded defaults: simulate the ``preclinical-2d`` calibration, write it
    as MDF, read it back and report. It grows as simulation and reconstruction land.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._version import __version__

EXIT_USAGE = 2
EXIT_BAD_INPUT = 1


class CLIError(Exception):
    """A user-facing error: printed as one line on stderr, no traceback."""


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
    from .io import read_mdf

    with read_mdf(args.file) as f:
        summary = f.summary()
    if args.json:
        print(json.dumps(summary, indent=None if args.compact else 2))
    else:
        print(_format_info(summary))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .grid import Grid
    from .io import read_mdf, write_calibration
    from .simulation import get_preset, simulate_system_matrix

    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="napari-mpi-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    scanner = get_preset(args.preset)
    nx, ny = args.grid
    fov = scanner.fov
    grid = Grid((1, ny, nx), fov=(0.0, fov[1], fov[0]), center=(0.0, 0.0, 0.0))
    t0 = time.perf_counter()
    sm = simulate_system_matrix(scanner, grid)
    t_sim = time.perf_counter() - t0
    path = out_dir / "calibration.mdf"
    write_calibration(path, sm, overwrite=True, metadata={"scanner": {"name": scanner.name}})
    with read_mdf(path) as f:
        summary = f.summary()
        back = f.system_matrix()
    exact = bool(np.array_equal(back.matrix, sm.matrix))
    energy = np.linalg.norm(sm.matrix, axis=1)
    strongest = np.argsort(energy)[::-1][:5]
    print(f"napari-mpi {__version__} demo: scanner preset '{scanner.name}'")
    print(f"  simulated system matrix {sm.num_rows} rows x {sm.num_voxels} voxels in {t_sim:.2f} s")
    print(f"  wrote {path} ({path.stat().st_size / 1e6:.1f} MB); read back identical: {exact}")
    print("  strongest rows: " + "; ".join(sm.row_labels()[i] for i in strongest))
    print(_format_info(summary))
    if not exact:
        raise CLIError(f"{path}: the calibration read back differs from what was written")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-mpi",
        description="Magnetic Particle Imaging: MDF files, simulation and reconstruction.",
    )
    parser.add_argument("--version", action="version", version=f"napari-mpi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="print what the MDF reader sees in a file")
    info.add_argument("file", help="an MDF file (.mdf, .h5, .hdf5), v1 or v2")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--compact", action="store_true", help="with --json: on one line")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser(
        "demo", help="run the main job on the embedded defaults (no input files needed)"
    )
    demo.add_argument("--out", help="folder for the files it writes (default: a temporary one)")
    demo.add_argument("--preset", default="preclinical-2d", help="scanner preset")
    demo.add_argument(
        "--grid", nargs=2, type=int, default=(19, 19), metavar=("NX", "NY"), help="grid size"
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-mpi`` command; returns the exit status."""
    from .io import MDFError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (MDFError, CLIError, FileNotFoundError, FileExistsError, ValueError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"napari-mpi {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
