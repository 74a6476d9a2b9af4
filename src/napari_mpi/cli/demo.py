"""``napari-mpi demo``: the main job on the embedded defaults (simulate -> write MDF -> read
back -> reconstruct with every method -> enhance a z-stepped 3D scan with every enhancement
method -> deblur a 2D x-space image of two tubes with DC_GAN and nominal-PSF deconvolution ->
report)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .._version import __version__
from ._common import CLIError, positive_int

#: the demo's parameters of the classical methods (the others run with their registry
#: defaults); every registered reconstruction method is run
DEMO_PARAMS = {
    "kaczmarz": {"lam": 0.1, "sweeps": 10},
    "admm": {"regularization": "l1+tv"},
    "pinv": {"lam": 0.01},
}
#: methods given every row of the calibration rather than the SNR-selected ones (the deep
#: image prior does best with all rows in benchmarks/bench_learned.py); the networks read
#: their own rows of the full matrix anyway
ALL_ROWS = ("dip",)


def demo_methods() -> list[tuple[str, dict, bool]]:
    """(method, parameters, uses the SNR-selected rows) for every registered reconstruction
    method, in registry order."""
    from ..recon import methods

    return [
        (m.name, DEMO_PARAMS.get(m.name, {}), not m.selects_rows and m.name not in ALL_ROWS)
        for m in methods("reconstruct")
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: simulate -> reconstruct -> enhance -> report."""
    from ..io import read_mdf, write_calibration, write_reconstruction
    from ..metrics import compare
    from ..progress import run
    from ..recon import iter_reconstruct
    from ..simulation import (
        get_preset,
        iter_measurement,
        iter_system_matrix,
        measured_snr_db,
        native_image,
        scanner_grid,
        write_simulated_measurement,
    )
    from ..simulation.phantoms import make_phantom
    from ._common import ProgressBar

    scanner = get_preset(args.preset)  # bad input fails here, before any folder is made
    grid = scanner_grid(scanner, tuple(args.grid))
    fine = scanner_grid(scanner, tuple(5 * n for n in args.grid))
    phantom = make_phantom(args.phantom, fine)
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="napari-mpi-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = ProgressBar(not args.quiet)
    report: dict = {"preset": scanner.name, "grid_xyz": list(args.grid), "files": {}}

    # 1. simulate the calibration and a measurement (phantom on a 5x finer grid: no inverse crime)
    t0 = time.perf_counter()
    sm = run(iter_system_matrix(scanner, grid, background_frames=4), progress)
    report["simulate_system_matrix_s"] = time.perf_counter() - t0
    cal_path = out_dir / "calibration.mdf"
    write_calibration(cal_path, sm, overwrite=True, metadata={"scanner": {"name": scanner.name}})
    meas = run(
        iter_measurement(
            sm, phantom, args.snr, frames=3, background_frames=2,
            simulate_on_phantom_grid=True, scanner=scanner,
        ),
        progress,
    )  # fmt: skip
    meas_path = write_simulated_measurement(out_dir / "measurement.mdf", meas, overwrite=True)
    write_reconstruction(out_dir / "phantom.mdf", meas.phantom, overwrite=True)
    write_reconstruction(
        out_dir / "xspace_native.mdf", native_image(meas.phantom, scanner.gradient), overwrite=True
    )
    report["files"].update(
        {"calibration": cal_path.name, "measurement": meas_path.name, "phantom": "phantom.mdf"}
    )

    # 2. read back from MDF, select frequencies by SNR, reconstruct with the classical methods
    with read_mdf(cal_path) as f:
        full = f.system_matrix()
        cal = f.system_matrix(snr_threshold=args.snr_threshold)
    with read_mdf(meas_path) as f:
        u = f.measurements(cal, average=True)
        u_full = f.measurements(full, average=True)
    exact = bool(np.array_equal(full.matrix, sm.matrix))
    report.update(
        {
            "calibration_read_back_identical": exact,
            "rows_total": full.num_rows,
            "rows_used": cal.num_rows,
            "snr_threshold": args.snr_threshold,
            "requested_snr_db": args.snr,
            "measured_snr_db": measured_snr_db(meas.clean, meas.data[0]),
            "methods": {},
        }
    )
    for method, params, selected in demo_methods():
        if method == "dip" and args.dip_iterations is not None:
            params = {**params, "iterations": args.dip_iterations}
        t0 = time.perf_counter()
        sm_m, u_m = (cal, u) if selected else (full, u_full)
        try:
            image = run(iter_reconstruct(sm_m, u_m, method, **params), progress)
        except ValueError as exc:  # e.g. a learned model trained for another calibration
            report["methods"][method] = {"skipped": str(exc)}
            continue
        elapsed = time.perf_counter() - t0
        name = f"reco_{method}.mdf"
        write_reconstruction(out_dir / name, image, overwrite=True)
        scores = compare(image, meas.phantom)
        report["methods"][method] = {"params": params, "seconds": elapsed, **scores}
        report["files"][method] = name
    report["enhancement"] = _enhance_step(out_dir, progress)
    report["deblurring"] = _deblur_step(out_dir, progress)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))

    print(f"napari-mpi {__version__} demo: preset '{scanner.name}', files in {out_dir}")
    print(
        f"  calibration {full.num_rows} rows x {full.num_voxels} voxels, simulated in "
        f"{report['simulate_system_matrix_s']:.2f} s; MDF read back identical: {exact}"
    )
    print(
        f"  measurement: phantom '{args.phantom}', requested {args.snr:g} dB, measured "
        f"{report['measured_snr_db']:.2f} dB; {cal.num_rows} rows with SNR >= "
        f"{args.snr_threshold:g}"
    )
    print(f"  {'method':<10}{'PSNR dB':>9}{'SSIM':>8}{'NRMSE':>8}{'time s':>9}")
    for method, r in report["methods"].items():
        if "skipped" in r:
            print(f"  {method:<10} skipped: {r['skipped']}")
            continue
        print(f"  {method:<10}{r['psnr']:9.2f}{r['ssim']:8.3f}{r['nrmse']:8.3f}{r['seconds']:9.3f}")
    enh = report["enhancement"]
    print(f"  enhancement: {enh['phantom']}, {enh['scan']}")
    print(f"  {'method':<16}{'PSNR dB':>9}{'SSIM':>8}{'NRMSE':>8}{'time s':>9}")
    for method, r in enh["methods"].items():
        print(
            f"  {method:<16}{r['psnr']:9.2f}{r['ssim']:8.3f}{r['nrmse']:8.3f}"
            f"{r.get('seconds', 0.0):9.3f}"
        )
    for method in enh.get("skipped", {}):
        print(f"  {method:<16} skipped: no shipped model yet (napari-mpi train {method})")
    deb = report["deblurring"]
    print(f"  x-space deblurring: {deb['phantom']}, {deb['scan']}")
    print(f"  {'method':<31}{'PSNR dB':>9}{'SSIM':>8}{'dip':>7}  resolved")
    for method, r in deb["methods"].items():
        print(f"  {method:<31}{r['psnr']:9.2f}{r['ssim']:8.3f}{r['dip']:7.2f}  {r['resolved']}")
    print("  report.json written")
    if not exact:
        raise CLIError(f"{cal_path}: the calibration read back differs from what was written")
    return 0


def _enhance_step(out_dir: Path, progress) -> dict:
    """A layered (z-stepped) scan of a procedural vessel tree (32^3 voxels of 1 mm, the
    papers' default degradation), enhanced by every registered enhancement method, each
    scored against the phantom; the scan and the results are written as MDF."""
    from ..enhance.data import make_pairs
    from ..io import write_reconstruction
    from ..metrics import compare
    from ..progress import run
    from ..recon import iter_enhance, methods

    pairs = make_pairs(None, split="test", count=1)
    scan, truth = pairs.image(0, "input"), pairs.image(0, "target")
    write_reconstruction(out_dir / "vessels_phantom.mdf", truth, overwrite=True)
    write_reconstruction(out_dir / "vessels_layered_scan.mdf", scan, overwrite=True)
    deg = pairs.degradation
    result: dict = {
        "phantom": "procedural vessel tree, 32^3 voxels of 1 mm",
        "scan": (
            f"layered scan at {deg.gradient:g} T/m in x-y ({deg.model} model, {deg.snr_db:g} dB)"
        ),
        "degradation": deg.to_dict(),
        "files": {"phantom": "vessels_phantom.mdf", "input": "vessels_layered_scan.mdf"},
        "methods": {"degraded input": compare(scan, truth)},
    }
    for entry in methods("enhance"):
        if entry.extra.get("accepts_2d"):
            continue  # a 2D model (dcgan): the x-space deblurring step runs it
        missing = _no_shipped_model(entry.name)
        if missing:  # registered and trainable, no default model shipped yet
            result.setdefault("skipped", {})[entry.name] = missing
            continue
        t0 = time.perf_counter()
        image = run(iter_enhance(scan, entry.name), progress)
        name = f"enhanced_{entry.name}.mdf"
        write_reconstruction(out_dir / name, image, overwrite=True)
        result["methods"][entry.name] = {
            "seconds": time.perf_counter() - t0,
            **compare(image, truth),
        }
        result["files"][entry.name] = name
    return result


def _no_shipped_model(method: str) -> str:
    """Why ``method`` cannot run on its default model ('' when it can): a method whose
    shipped model is still to come (trained with ``napari-mpi train``, used with --model)."""
    from ..enhance.diffusion import DIFFUSION_METHODS, _folder

    if method not in DIFFUSION_METHODS:
        return ""
    try:
        _folder(method, "default")
    except ValueError as exc:
        return str(exc)
    return ""


def _deblur_step(out_dir: Path, progress) -> dict:
    """DC_GAN's setting: two 1.2 mm tubes 2.2 mm apart, their native x-space image with the
    mismatched true PSF (default ``XSpaceBlur``, 40 dB), deconvolved with the nominal PSF
    (Wiener, Richardson-Lucy; the benchmark's tuned parameters) and deblurred by every
    registered 2D enhancement method (dcgan); scored after a least-squares gain, with the dip
    between the tubes (resolved: dip <= 8/pi^2). The images are written as MDF."""
    import numpy as np

    from ..enhance.tube_resolution import dip_ratio, tube_pair, tube_profile
    from ..enhance.unpaired import image_grid, scores
    from ..enhance.xspace_deblur import nominal_deconvolutions
    from ..image import MPIImage
    from ..io import write_reconstruction
    from ..progress import run
    from ..recon import iter_enhance, methods
    from ..simulation.psf_mismatch import XSpaceBlur

    gap = 2.2e-3
    grid = image_grid()
    blur = XSpaceBlur()
    phantom = tube_pair(gap)
    native = blur.native(phantom, grid, np.random.default_rng(0))
    outputs, seconds = {"native": native}, {}
    for name in ("wiener", "richardson-lucy"):
        t0 = time.perf_counter()
        outputs[f"{name} (nominal PSF)"] = nominal_deconvolutions(native, blur, which=(name,))[name]
        seconds[f"{name} (nominal PSF)"] = time.perf_counter() - t0
    native_image = MPIImage(native[None, None], grid.fov, grid.center,
                            metadata={"xspace_blur": blur.to_dict()})  # fmt: skip
    for entry in methods("enhance"):
        if not entry.extra.get("accepts_2d"):
            continue
        t1 = time.perf_counter()
        outputs[entry.name] = run(iter_enhance(native_image, entry.name), progress).data[0, 0]
        seconds[entry.name] = time.perf_counter() - t1
    result: dict = {
        "phantom": "two 1.2 mm tubes, 2.2 mm gap, 101 x 101 pixels over 20 mm",
        "scan": "x-space native image, 2 T/m, 1 us relaxation, 20 % weaker x gradient, 40 dB",
        "blur": blur.to_dict(),
        "methods": {},
        "files": {},
    }
    write_reconstruction(
        out_dir / "tubes_phantom.mdf",
        MPIImage(phantom[None, None], grid.fov, grid.center),
        overwrite=True,
    )
    for name, image in outputs.items():
        dip = dip_ratio(tube_profile(image), gap)
        result["methods"][name] = {**scores(image, phantom), "dip": dip["dip"],
                                   "resolved": dip["resolved"],
                                   "seconds": seconds.get(name, 0.0)}  # fmt: skip
        file = "tubes_" + name.split(" ")[0] + ".mdf"
        write_reconstruction(
            out_dir / file,
            MPIImage(np.asarray(image, np.float32)[None, None], grid.fov, grid.center),
            overwrite=True,
        )
        result["files"][name] = file
    return result


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the sub-commands."""
    demo = sub.add_parser(
        "demo", help="run the main job on the embedded defaults (no input files needed)"
    )
    demo.add_argument("--out", help="folder for the files it writes (default: a temporary one)")
    demo.add_argument("--preset", default="preclinical-2d", help="scanner preset")
    demo.add_argument(
        "--grid",
        nargs=2,
        type=positive_int,
        default=(19, 19),
        metavar=("NX", "NY"),
        help="calibration grid",
    )
    demo.add_argument("--phantom", default="resolution", metavar="SPEC", help="phantom SPEC")
    demo.add_argument("--snr", type=float, default=30.0, help="measurement SNR (dB)")
    demo.add_argument(
        "--snr-threshold", type=float, default=30.0, help="calibration SNR threshold for rows"
    )
    demo.add_argument(
        "--dip-iterations",
        type=positive_int,
        default=None,
        metavar="N",
        help="iterations of the deep image prior (default: its registry default; it is the "
        "slowest method, fewer make a quick check)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress display")
    demo.set_defaults(func=cmd_demo)
