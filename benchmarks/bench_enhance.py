"""Benchmark: 3D enhancement on the VesselMNIST3D test split (the CSDNet Table 1 analogue).

Pairs: ../shared/data/vesselmnist3d test volumes (all 382 by default), resized to 32^3 at 1 mm,
degraded by the default ``Degradation()`` (the papers' layered scan: 3 T/m in x-y, 1.5 T/m
along z, 2 mm z steps, 25 nm cores, 30 dB). Rows: the degraded input, Richardson-Lucy and
Wiener deconvolution with the scan's PSF. The learned methods (3D CNN baselines, CSDNet) are
not built yet, so they have no rows.

Tuning (never on test volumes; ``check_training_split`` guards it): the deconvolution
parameters maximise mean PSNR on the first validation volumes over a small grid: RL
iterations 100 / 200 / 400 / 800 (accelerated; one run per volume scored at every count;
``--rl-val-count`` volumes) and Wiener balance 1e-5 .. 1e-2 x padding (``--val-count``).
RL costs ~15-25 ms per iteration on one core, so it runs on the first ``--rl-test-count``
test volumes (default 96); the other rows use every test volume, and a second table gives
every row on RL's volumes.

Reported: mean +- std of PSNR (dB, peak = phantom max), SSIM and RMSE (napari_mpi.metrics;
RMSE also x255, the papers' 8-bit scale), the FWHM (mm) along x, y and z of a point (one voxel
on a layer) and across two lines (one voxel wide, along y and along x; noise-free scans),
and the mean time per volume.

    OMP_NUM_THREADS=1 python benchmarks/bench_enhance.py [--test-count 382] [--rl-test-count 96]
        [--val-count 32] [--rl-val-count 16] [--json benchmarks/results/enhance.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from napari_mpi.enhance import Degradation
from napari_mpi.enhance.data import check_training_split, make_pairs, pair_grid
from napari_mpi.enhance.deconvolution import richardson_lucy_array, wiener_array
from napari_mpi.image import MPIImage
from napari_mpi.metrics import psnr, rmse, ssim
from napari_mpi.profiles import fwhm

VESSELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vesselmnist3d"
VESSELS = VESSELS / "vesselmnist3d.npz"
RL_GRID = (100, 200, 400, 800)
WIENER_GRID = {
    "balance": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
    "padding": ("reflect", "zero"),
}


def scores(out: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    return psnr(out, target), ssim(out, target), rmse(out, target)


def tune(val, kernel, rl_count: int) -> tuple[dict, dict]:
    """Best RL iterations (first ``rl_count`` volumes) and Wiener parameters (all) on
    validation pairs, with the grids' mean PSNRs."""
    check_training_split(val, "deconvolution tuning")
    rl = {k: [] for k in RL_GRID}
    for x, t in zip(val.inputs[:rl_count], val.targets[:rl_count], strict=True):

        def record(k, est, t=t):
            if k in rl:
                rl[k].append(psnr(est, t))

        richardson_lucy_array(x, kernel, max(RL_GRID), callback=record, accelerate=True)
    rl_mean = {k: float(np.mean(v)) for k, v in rl.items()}
    wi_mean = {}
    for balance in WIENER_GRID["balance"]:
        for padding in WIENER_GRID["padding"]:
            outs = [wiener_array(x, kernel, balance, padding=padding) for x in val.inputs]
            wi_mean[(balance, padding)] = float(
                np.mean([psnr(o, t) for o, t in zip(outs, val.targets, strict=True)])
            )
    best_rl = max(rl_mean, key=rl_mean.get)
    best_wi = max(wi_mean, key=wi_mean.get)
    return (
        {"rl": {"iterations": best_rl}, "wiener": {"balance": best_wi[0], "padding": best_wi[1]}},
        {"rl": rl_mean, "wiener": {f"{b:g}/{p}": v for (b, p), v in wi_mean.items()}},
    )


def methods(params: dict, kernel: np.ndarray) -> dict:
    """label -> (function of a degraded volume, key of the row's test count)."""
    rl, wi = params["rl"], params["wiener"]
    return {
        "degraded input": (lambda x: x, "all"),
        f"richardson-lucy ({rl['iterations']} it., accelerated)": (
            lambda x: richardson_lucy_array(x, kernel, rl["iterations"], accelerate=True),
            "rl",
        ),
        f"wiener (balance {wi['balance']:g}, {wi['padding']})": (
            lambda x: wiener_array(x, kernel, wi["balance"], padding=wi["padding"]),
            "all",
        ),
    }


def summary(v: np.ndarray) -> dict:
    """mean and std of (psnr, ssim, rmse) rows."""
    return {
        "psnr": [float(v[:, 0].mean()), float(v[:, 0].std())],
        "ssim": [float(v[:, 1].mean()), float(v[:, 1].std())],
        "rmse": [float(v[:, 2].mean()), float(v[:, 2].std())],
        "count": int(v.shape[0]),
    }


def widths(volume: np.ndarray, centre: tuple[int, int, int]) -> dict[str, float]:
    """FWHM (mm, 1 mm voxels) along x, y and z through ``centre`` (nan where not defined)."""
    z, y, x = centre
    out = {}
    for axis, profile in (("x", volume[z, y, :]), ("y", volume[z, :, x]), ("z", volume[:, y, x])):
        out[axis] = fwhm(profile, 1.0)
    return out


def resolution_objects(degradation: Degradation) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Noise-free scans of a point and two lines on the pair grid: name -> (scan, centre)."""
    grid = pair_grid()
    c = grid.shape[0] // 2  # voxel 16: on a layer (layers every 2 voxels from 0)
    objects = {}
    for name, index in (
        ("point", (c, c, c)),
        ("line along y", (c, slice(None), c)),
        ("line along x", (c, c, slice(None))),
    ):
        phantom = np.zeros(grid.shape, np.float32)
        phantom[index] = 1.0
        scan = degradation.without_noise().apply(MPIImage(phantom, grid.fov, grid.center))
        objects[name] = scan.data[0]
    return objects


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--volumes", default=str(VESSELS), help="MedMNIST-style .npz with splits")
    p.add_argument("--test-count", type=int, default=None, help="test volumes (default all)")
    p.add_argument("--rl-test-count", type=int, default=96, help="test volumes for RL")
    p.add_argument("--val-count", type=int, default=32, help="validation volumes (Wiener)")
    p.add_argument("--rl-val-count", type=int, default=16, help="validation volumes (RL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    degradation = Degradation()
    t0 = time.perf_counter()
    val = make_pairs(args.volumes, "val", degradation, args.seed, args.val_count)
    kernel = degradation.psf(val.grid)
    params, grid_scores = tune(val, kernel, args.rl_val_count)
    tuning_s = time.perf_counter() - t0
    print(f"tuned in {tuning_s:.0f} s: {params}")
    print(f"  RL mean val PSNR per iteration count: {grid_scores['rl']}")
    print(f"  Wiener mean val PSNR: {grid_scores['wiener']}", flush=True)

    test = make_pairs(args.volumes, "test", degradation, args.seed, args.test_count)
    counts = {"all": len(test), "rl": min(args.rl_test_count, len(test))}
    c = test.grid.shape[0] // 2
    objects = resolution_objects(degradation)
    rows, per_volume = {}, {}
    for label, (fn, which) in methods(params, kernel).items():
        values, seconds = [], 0.0
        n = counts[which]
        for x, t in zip(test.inputs[:n], test.targets[:n], strict=True):
            start = time.perf_counter()
            out = np.asarray(fn(x))
            seconds += time.perf_counter() - start
            values.append(scores(out, t))
        per_volume[label] = np.array(values)
        res = {name: widths(np.asarray(fn(obj)), (c, c, c)) for name, obj in objects.items()}
        rows[label] = {
            **summary(per_volume[label]),
            "fwhm_mm": res,
            "seconds_per_volume": seconds / n,
        }
        print(f"{label}: {rows[label]['psnr'][0]:.2f} dB on {n}", flush=True)
    subset = {label: summary(v[: counts["rl"]]) for label, v in per_volume.items()}

    print(f"\nVesselMNIST3D test split, 32^3 at 1 mm, {degradation.describe()}")
    print(
        "| method | volumes | PSNR (dB) | SSIM | RMSE (x255) | point FWHM x / y / z (mm) "
        "| line FWHM x / y / z (mm) | s / volume |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        pt = r["fwhm_mm"]["point"]
        lx = r["fwhm_mm"]["line along y"]["x"]
        ly = r["fwhm_mm"]["line along x"]["y"]
        lz = r["fwhm_mm"]["line along y"]["z"]
        print(
            f"| {label} | {r['count']} | {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} "
            f"| {r['ssim'][0]:.3f} ± {r['ssim'][1]:.3f} "
            f"| {255 * r['rmse'][0]:.2f} ± {255 * r['rmse'][1]:.2f} "
            f"| {pt['x']:.2f} / {pt['y']:.2f} / {pt['z']:.2f} "
            f"| {lx:.2f} / {ly:.2f} / {lz:.2f} | {r['seconds_per_volume']:.3f} |"
        )
    print(f"\nThe first {counts['rl']} test volumes (every method on the same volumes):")
    print("| method | PSNR (dB) | SSIM | RMSE (x255) |")
    print("|---|---|---|---|")
    for label, r in subset.items():
        print(
            f"| {label} | {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} "
            f"| {r['ssim'][0]:.3f} ± {r['ssim'][1]:.3f} "
            f"| {255 * r['rmse'][0]:.2f} ± {255 * r['rmse'][1]:.2f} |"
        )
    if args.json:
        out = {
            "test_volumes": counts,
            "val_volumes": {"wiener": len(val), "rl": min(args.rl_val_count, len(val))},
            "degradation": degradation.to_dict(),
            "normalisation": test.normalisation,
            "tuned": params,
            "tuning_grid_val_psnr": {
                k: {str(a): b for a, b in v.items()} for k, v in grid_scores.items()
            },
            "tuning_seconds": tuning_s,
            "rows": rows,
            "rows_on_rl_subset": subset,
            "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        }
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
