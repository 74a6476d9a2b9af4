"""``napari-mpi simulate``: system matrices, measurements and x-space images."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ._common import (
    ProgressBar,
    finite_float,
    non_negative_int,
    positive_float,
    positive_int,
)


def _grid(scanner, sizes: list[int] | None):
    from ..simulation import scanner_grid

    if sizes is None:
        sizes = [19] * scanner.num_drive_channels
    if len(sizes) > 3:
        raise ValueError(f"--grid takes 1 to 3 sizes (NX [NY [NZ]]), got {len(sizes)}")
    return scanner_grid(scanner, tuple(sizes))


def _scanner(args: argparse.Namespace):
    from ..simulation import get_preset

    scanner = get_preset(args.preset)
    changes = {}
    if getattr(args, "gradient", None):
        changes["gradient"] = tuple(args.gradient)
    if getattr(args, "drive_amplitude_mt", None):
        amps = tuple(a * 1e-3 for a in args.drive_amplitude_mt)
        if len(amps) != scanner.num_drive_channels:
            raise ValueError(
                f"--drive-amplitude-mt needs {scanner.num_drive_channels} value(s) for preset "
                f"'{scanner.name}', got {len(amps)}"
            )
        changes["drive_amplitude"] = amps
    return scanner.with_changes(**changes) if changes else scanner


def _particles(args: argparse.Namespace):
    from ..simulation import Particles

    return Particles(diameter=args.diameter_nm / 1e9, temperature=args.temperature)


def _check_output(path: Path, overwrite: bool) -> None:
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise FileExistsError(f"{path}: exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: folder does not exist (for {path})")


def _check_outputs(args: argparse.Namespace) -> Path:
    """Refuse existing outputs (-o and --phantom-out) unless --overwrite; returns -o."""
    out = Path(args.output)
    _check_output(out, args.overwrite)
    if getattr(args, "phantom_out", None):
        _check_output(Path(args.phantom_out), args.overwrite)
    return out


def cmd_system_matrix(args: argparse.Namespace) -> int:
    from ..io import write_calibration
    from ..progress import run
    from ..simulation import iter_system_matrix

    out = _check_outputs(args)
    scanner = _scanner(args)
    grid = _grid(scanner, args.grid)
    order: int | str | None = "default"
    if args.all_frequencies:
        order = None
    elif args.mixing_order is not None:
        order = args.mixing_order
    work = iter_system_matrix(
        scanner,
        grid,
        _particles(args),
        subvoxels=args.subvoxels,
        channels=args.channels,
        min_frequency=args.min_frequency,
        max_frequency=args.max_frequency,
        mixing_order=order,
        background_frames=args.background_frames,
        noise_std=args.noise_std,
        add_noise=args.add_noise,
        seed=args.seed,
    )
    sm = run(work, ProgressBar(not args.quiet))
    write_calibration(
        out, sm, overwrite=args.overwrite, metadata={"scanner": {"name": scanner.name}}
    )
    print(
        f"wrote {out}: {sm.num_rows} rows x {sm.num_voxels} voxels, grid (x, y, z) "
        f"{list(sm.grid_shape[::-1])}, scanner '{scanner.name}'"
    )
    return 0


def cmd_measurement(args: argparse.Namespace) -> int:
    from ..grid import Grid
    from ..io import read_mdf
    from ..progress import run
    from ..simulation import iter_measurement, write_simulated_measurement
    from ..simulation.measurement import scanner_from_acquisition
    from ..simulation.noise import measured_snr_db
    from ..simulation.phantoms import make_phantom

    out = _check_outputs(args)
    with read_mdf(args.calibration) as f:
        sm = f.system_matrix()
    grid = sm.grid
    fine = args.fine_grid is not None and args.fine_grid > 1
    if fine:
        shape = tuple(
            n * args.fine_grid if fov > 0 else n
            for n, fov in zip(grid.shape, grid.fov, strict=True)
        )
        grid = Grid(shape, grid.fov, grid.center)
    phantom = make_phantom(args.phantom, grid)
    scanner = scanner_from_acquisition(sm.acquisition) if fine else None
    work = iter_measurement(
        sm,
        phantom,
        args.snr,
        frames=args.frames,
        background_frames=args.background_frames,
        seed=args.seed,
        simulate_on_phantom_grid=fine,
        scanner=scanner,
    )
    meas = run(work, ProgressBar(not args.quiet))
    write_simulated_measurement(out, meas, overwrite=args.overwrite)
    if args.phantom_out:
        try:
            np.save(args.phantom_out, meas.phantom.data[0])
        except BaseException:
            out.unlink(missing_ok=True)  # a failed command leaves no output behind
            raise
    snr = measured_snr_db(meas.clean, meas.data[0]) if args.snr is not None else float("inf")
    print(
        f"wrote {out}: {args.frames} frame(s) + {args.background_frames} background, "
        f"{sm.num_rows} rows, requested SNR {args.snr} dB, measured {snr:.2f} dB"
        + (f"; phantom on the calibration grid -> {args.phantom_out}" if args.phantom_out else "")
    )
    return 0


def cmd_xspace(args: argparse.Namespace) -> int:
    from ..io import write_reconstruction
    from ..simulation import gridded_scan, layered_scan, narrowband_image, native_image
    from ..simulation.phantoms import make_phantom

    out = _check_outputs(args)
    scanner = _scanner(args)
    grid = _grid(scanner, args.grid)
    phantom = make_phantom(args.phantom, grid)
    particles = _particles(args)
    if args.mode == "native":
        image = native_image(phantom, scanner.gradient, particles)
    elif args.mode == "gridded":
        image = gridded_scan(scanner, phantom, particles=particles)
    elif args.mode == "layered":
        image = layered_scan(
            phantom,
            args.scan_gradient,
            particles,
            z_gradient=args.z_gradient,
            z_step=None if args.z_step_mm is None else args.z_step_mm * 1e-3,
            snr=args.scan_snr,
            seed=args.seed,
            model=args.scan_model,
        )
    else:
        image = narrowband_image(
            phantom, scanner.drive_amplitude[0], scanner.gradient, particles, args.harmonic
        )
    image.metadata["phantom"] = args.phantom
    write_reconstruction(out, image, overwrite=args.overwrite)
    if args.phantom_out:
        np.save(args.phantom_out, phantom.data[0])
    print(f"wrote {out}: {args.mode} x-space image, grid (x, y, z) {list(grid.shape[::-1])}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..simulation.phantoms import PHANTOM_SPEC_HELP
    from ..simulation.scanner import PRESETS

    presets = ", ".join(sorted(PRESETS))
    sim = sub.add_parser(
        "simulate",
        help="simulate system matrices, measurements and x-space images",
        description="Simulate MPI data with the Langevin model and FFP scanner presets.",
        epilog=PHANTOM_SPEC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = sim.add_subparsers(dest="what", metavar="WHAT")
    what.required = True

    def common(p: argparse.ArgumentParser, scanner: bool = True) -> None:
        if scanner:
            p.add_argument("--preset", default="preclinical-2d", help=f"scanner preset: {presets}")
            p.add_argument(
                "--grid",
                nargs="+",
                type=positive_int,
                metavar="N",
                help="voxels NX [NY [NZ]] over the drive-field FOV (default 19 per driven axis)",
            )
            p.add_argument(
                "--gradient",
                nargs=3,
                type=finite_float,
                metavar=("GX", "GY", "GZ"),
                help="selection-field gradient (T/m), overrides the preset",
            )
            p.add_argument(
                "--drive-amplitude-mt",
                nargs="+",
                type=positive_float,
                metavar="MT",
                help="drive amplitude per channel (mT), overrides the preset",
            )
            p.add_argument(
                "--diameter-nm",
                type=positive_float,
                default=25.0,
                help="particle core diameter (nm, default 25)",
            )
            p.add_argument(
                "--temperature", type=positive_float, default=300.0, help="temperature (K)"
            )
        p.add_argument("-o", "--output", required=True, help="output MDF file")
        p.add_argument("--overwrite", action="store_true", help="replace existing output files")
        p.add_argument("--seed", type=int, default=0, help="random seed (noise, placement)")
        p.add_argument("--quiet", action="store_true", help="no progress display")

    smp = what.add_parser(
        "system-matrix",
        help="simulate a calibration (delta sample at every voxel) and write it as MDF",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common(smp)
    smp.add_argument(
        "--subvoxels",
        type=positive_int,
        default=1,
        help="sample points per axis averaged inside each voxel (delta-sample size)",
    )
    smp.add_argument("--min-frequency", type=positive_float, help="lowest frequency kept (Hz)")
    smp.add_argument("--max-frequency", type=positive_float, help="highest frequency kept (Hz)")
    smp.add_argument(
        "--mixing-order",
        type=positive_int,
        help="keep only mixing frequencies up to this total order (3D presets default to 12)",
    )
    smp.add_argument(
        "--all-frequencies", action="store_true", help="keep every rfft bin (no mixing selection)"
    )
    smp.add_argument("--channels", nargs="+", type=int, help="receive channels to keep (0-based)")
    smp.add_argument(
        "--background-frames", type=non_negative_int, default=0, help="empty-scanner frames"
    )
    smp.add_argument(
        "--noise-std",
        type=positive_float,
        help="calibration noise per entry (V); default 1e-3 of the strongest row's RMS",
    )
    smp.add_argument("--add-noise", action="store_true", help="add the noise to the matrix too")
    smp.set_defaults(func=cmd_system_matrix)

    mp = what.add_parser(
        "measurement",
        help="simulate u = S c + noise for a calibration and write it as MDF",
        epilog=PHANTOM_SPEC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(mp, scanner=False)
    mp.add_argument("--calibration", required=True, help="calibration MDF file")
    mp.add_argument("--phantom", required=True, metavar="SPEC", help="phantom SPEC (see below)")
    mp.add_argument(
        "--snr",
        type=finite_float,
        required=True,
        metavar="DB",
        help="SNR in dB: 20 log10(rms(clean) / rms(noise)) over the used rows",
    )
    mp.add_argument("--frames", type=positive_int, default=1, help="noisy frames (default 1)")
    mp.add_argument(
        "--background-frames", type=non_negative_int, default=0, help="noise-only frames"
    )
    mp.add_argument(
        "--fine-grid",
        type=positive_int,
        metavar="FACTOR",
        help="simulate the phantom on a grid FACTOR times finer with the physics model "
        "(avoids the inverse crime)",
    )
    mp.add_argument(
        "--phantom-out",
        metavar="FILE.npy",
        help="save the phantom resampled onto the calibration grid, (z, y, x)",
    )
    mp.set_defaults(func=cmd_measurement)

    xp = what.add_parser(
        "xspace",
        help="simulate an x-space image of a phantom and write it as an MDF reconstruction",
        epilog=PHANTOM_SPEC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(xp)
    xp.add_argument("--phantom", required=True, metavar="SPEC", help="phantom SPEC (see below)")
    xp.add_argument(
        "--mode",
        choices=("native", "gridded", "layered", "narrowband"),
        default="native",
        help="native: PSF convolution; gridded: velocity-compensated gridding of a simulated "
        "scan; layered: z-stepped 3D scan; narrowband: harmonic PSF (default native)",
    )
    xp.add_argument(
        "--scan-gradient",
        type=positive_float,
        default=3.0,
        help="layered mode: gradient in the scan plane (T/m, default 3)",
    )
    xp.add_argument(
        "--scan-model",
        choices=("papers", "trace-free"),
        default="papers",
        help="layered mode: papers (z blurred, default) or trace-free (ideal FFP magnet, "
        "z sharper; the earlier layered scan)",
    )
    xp.add_argument(
        "--z-gradient",
        type=positive_float,
        help="layered mode: gradient along the stepping axis (T/m; default half the scan "
        "gradient, papers model)",
    )
    xp.add_argument(
        "--z-step-mm",
        type=positive_float,
        help="layered mode: mechanical z step between layers (mm; default 2 for papers, one "
        "voxel for trace-free)",
    )
    xp.add_argument(
        "--scan-snr", type=float, help="layered mode: add Gaussian noise at this SNR (dB)"
    )
    xp.add_argument(
        "--harmonic", type=positive_int, default=3, help="narrowband mode: harmonic (default 3)"
    )
    xp.add_argument("--phantom-out", metavar="FILE.npy", help="save the phantom, (z, y, x)")
    xp.set_defaults(func=cmd_xspace)
