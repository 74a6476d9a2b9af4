"""Benchmark: reconstruction beyond digits (the out-of-distribution table next to the digit one).

The objects MPI groups scan, none of them drawn in training or tuning: the public phantoms'
analogues (the resolution phantom, as ``napari-mpi demo`` reconstructs it, and a variant with
1.5 mm tubes; the shape phantom's cone along x and along y; the concentration phantom with
3 mm and 2 mm squares), two 1.2 mm points at centre gaps of 2-6 mm, two 1.2 mm tubes at edge
gaps of 1-5 mm (all centred, fixed: the training mix draws continuous random sizes, gaps and
positions), and vessel slabs: the sum over the central 8 slices of VesselMNIST3D test
volumes (real vessel segments; the training mix has only procedural trees).

Protocol as ``bench_learned.py``: phantoms on the 95 x 95 grid (5x finer than the
calibration, so no inverse crime), signal through the fine system matrix, complex Gaussian
noise at each SNR, targets the phantoms resampled to the 19 x 19 calibration grid, the
``preclinical-2d`` preset's default calibration (every bin). The classical methods (and
PP-MPI) are tuned per SNR by grid search on validation phantoms of the training mix
(``napari_mpi.simulation.phantom_mix``, drawn on the fine grid at the calibration's voxel
size; digits from the validation split 8100-8999), the same distribution the learned
models were validated on; the learned methods use their shipped models (``--model`` /
``--compare`` for others). The deep image prior is slow (thousands of network passes per
frame): it runs at ``--dip-snr`` only.

    python benchmarks/bench_ood.py [--snr 20 25 30 35] [--val 50] [--model admm-net=DIR]
        [--compare dernet=OLD_DIR] [--dip-snr 30] [--json benchmarks/results/ood.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_learned as bl

from napari_mpi.datasets import load_npz_images, split_indices
from napari_mpi.image import MPIImage
from napari_mpi.resample import resample
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix
from napari_mpi.simulation.noise import add_noise
from napari_mpi.simulation.phantom_mix import PhantomMix, mix_phantom
from napari_mpi.simulation.phantoms import (
    _resize_to,
    concentration_phantom,
    resolution_phantom,
    shape_phantom,
    two_points,
    two_tubes,
)

VESSELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vesselmnist3d"
VESSELS = VESSELS / "vesselmnist3d.npz"
POINT_GAPS_MM = (2.0, 3.0, 4.0, 5.0, 6.0)
TUBE_GAPS_MM = (1.0, 2.0, 3.0, 4.0, 5.0)


def _transposed(image: MPIImage, name: str) -> MPIImage:
    data = np.ascontiguousarray(np.swapaxes(image.data, -1, -2))
    return MPIImage(data, image.fov, image.center, metadata={**image.metadata, "variant": name})


def ood_objects(fine, vessels: int) -> list[tuple[str, str, np.ndarray]]:
    """(family, name, values (95, 95)) of every benchmark object on the fine grid."""
    out = [
        ("public analogues", "resolution (demo)", resolution_phantom(fine)),
        ("public analogues", "resolution, 1.5 mm tubes", resolution_phantom(fine, diameter=1.5e-3)),
        ("public analogues", "shape, cone along x", shape_phantom(fine)),
        ("public analogues", "shape, cone along y", _transposed(shape_phantom(fine), "y")),
        ("public analogues", "concentration, 3 mm", concentration_phantom(fine)),
        ("public analogues", "concentration, 2 mm", concentration_phantom(fine, edge=2e-3)),
    ]
    out += [
        ("two points", f"points {g:g} mm", two_points(fine, g * 1e-3, diameter=1.2e-3))
        for g in POINT_GAPS_MM
    ]
    out += [("two tubes", f"tubes {g:g} mm", two_tubes(fine, g * 1e-3)) for g in TUBE_GAPS_MM]
    objects = [(f, n, im.data[0, 0]) for f, n, im in out]
    if vessels > 0:
        if not VESSELS.is_file():
            raise SystemExit(f"{VESSELS}: not found (the vessel slabs need it; --vessels 0)")
        volumes = load_npz_images(VESSELS, "test_images")[:vessels].astype(np.float64)
        for i, vol in enumerate(volumes):
            slab = vol[10:18].sum(axis=0)
            values = _resize_to(slab, fine.shape[1:])
            objects.append(("vessel slabs", f"vessels {i}", values / values.max()))
    return objects


def mix_validation(fine, coarse, count: int, seed: int = 11) -> list[np.ndarray]:
    """``count`` phantoms of the default training mix on the fine grid (values (95, 95)),
    sized in calibration voxels; digits from the validation split."""
    digits = load_npz_images(bl.MNIST)
    digits = digits[split_indices(digits.shape[0], "val")]
    rng = np.random.default_rng(seed)
    sampler = PhantomMix(None)
    unit = float(np.mean(coarse.voxel_size[1:]))
    out = []
    for _ in range(count):
        kind = sampler.kind(rng)
        out.append(mix_phantom(kind, fine, rng, digits, unit=unit)[0])
    return out


def make_set(full, fine_matrix, phantoms, snrs, coarse, fine, seed: int):
    """Targets (n, 19, 19) and noisy spectra {snr: (n, rows)} of fine-grid phantoms."""
    targets, clean = [], []
    for values in phantoms:
        image = MPIImage(values[None, None].astype(np.float32), fine.fov, fine.center)
        targets.append(resample(image, coarse).data[0, 0])
        clean.append(fine_matrix @ values.reshape(-1).astype(np.complex128))
    noisy = {}
    for snr in snrs:
        rows = []
        for i, c in enumerate(clean):
            rows.append(add_noise(c, snr, np.random.default_rng([seed, i, int(snr * 10)]))[0])
        noisy[snr] = np.array(rows, dtype=np.complex64)
    return np.array(targets), noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snr", type=float, nargs="+", default=[20.0, 25.0, 30.0, 35.0])
    parser.add_argument("--val", type=int, default=50, help="mix validation phantoms for tuning")
    parser.add_argument("--vessels", type=int, default=10, help="VesselMNIST3D test slabs")
    parser.add_argument("--single", type=int, default=5, help="frames timed one at a time")
    parser.add_argument("--only", nargs="+", help="registry names of the methods to run")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="an extra row: learned method NAME with the model in DIR (e.g. an older model)",
    )
    parser.add_argument("--dip-snr", type=float, nargs="*", default=[30.0])
    parser.add_argument("--dip-counts", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--dip-val", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--merge", action="store_true", help="update the --json file's methods, keep the rest"
    )
    args = parser.parse_args()
    wanted = None if not args.only else set(args.only)
    models = dict(item.split("=", 1) for item in args.model)
    t_start = time.perf_counter()
    scanner = get_preset("preclinical-2d")
    coarse = scanner_grid(scanner, (19, 19))
    fine = scanner_grid(scanner, (95, 95))
    full = simulate_system_matrix(scanner, coarse)
    fine_matrix = simulate_system_matrix(scanner, fine).matrix.astype(np.complex128)
    objects = ood_objects(fine, args.vessels)
    t_test, u_test = make_set(full, fine_matrix, [o[2] for o in objects], args.snr, coarse,
                              fine, seed=1)  # fmt: skip
    val = mix_validation(fine, coarse, args.val)
    t_val, u_val = make_set(full, fine_matrix, val, args.snr, coarse, fine, seed=2)
    families = sorted({o[0] for o in objects}, key=[o[0] for o in objects].index)
    fam_index = {f: [i for i, o in enumerate(objects) if o[0] == f] for f in families}
    print(f"data: {len(objects)} objects, {args.val} validation phantoms "
          f"({time.perf_counter() - t_start:.0f} s)", flush=True)  # fmt: skip
    results = {
        "snr_db": args.snr,
        "objects": [{"family": f, "name": n} for f, n, _ in objects],
        "val_phantoms": args.val,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "methods": {},
    }

    def record(label, snr, images, n, batch, params, val_psnr):
        s = bl.scores(images, t_test[:n])
        entry = results["methods"].setdefault(label, {})
        entry[str(snr)] = {
            "psnr_per_object": [float(v) for v in s[:, 1]],
            "ssim_per_object": [float(v) for v in s[:, 2]],
            "nrmse_per_object": [float(v) for v in s[:, 0]],
            "psnr": [float(s[:, 1].mean()), float(s[:, 1].std())],
            "ssim": [float(s[:, 2].mean()), float(s[:, 2].std())],
            "families": {
                f: {
                    "psnr": float(s[[i for i in idx if i < n], 1].mean()),
                    "ssim": float(s[[i for i in idx if i < n], 2].mean()),
                }
                for f, idx in fam_index.items()
                if any(i < n for i in idx)
            },
            "ms_per_frame_batch": batch * 1e3,
            "params": params,
            "val_psnr": val_psnr,
        }
        fams = "  ".join(f"{f} {v['psnr']:.2f}" for f, v in entry[str(snr)]["families"].items())
        print(f"{snr:g} dB {label:<22} PSNR {s[:, 1].mean():.2f}  SSIM {s[:, 2].mean():.3f}  "
              f"| {fams}  {params}", flush=True)  # fmt: skip

    def runs(name: str) -> bool:
        return wanted is None or name in wanted

    n_all = len(objects)
    for snr in args.snr:
        for label, name, fixed, grid in bl.CLASSICAL:
            if not runs(name):
                continue
            params, val_psnr = bl.tune(full, u_val[snr], t_val, name, fixed, grid)
            images, batch, _ = bl.timed(full, u_test[snr], name, params, args.single)
            record(label, snr, images, n_all, batch, params, val_psnr)
        rows = [(label, name, {}) for label, name, _ in bl.LEARNED]
        rows += [(f"{n} ({Path(d).name})", n, {"model": d})
                 for n, d in (c.split("=", 1) for c in args.compare)]  # fmt: skip
        for label, name, params in rows:
            if not runs(name) or (name in bl.NEEDS_MODEL and name not in models and not params):
                continue
            if name in models and not params:
                params = {"model": models[name]}
            images, batch, _ = bl.timed(full, u_test[snr], name, params, args.single)
            record(label, snr, images, n_all, batch, params, None)
        if snr in args.dip_snr and runs("dip"):
            n_val = min(args.dip_val, args.val)
            params, val_psnr = bl.tune_dip(full, u_val[snr][:n_val], t_val[:n_val],
                                           args.dip_counts, [None])  # fmt: skip
            images, batch, _ = bl.timed(full, u_test[snr], "dip", params, 1)
            record("DIP", snr, images, n_all, batch, params, val_psnr)
    results["seconds"] = time.perf_counter() - t_start
    if args.json and args.merge and args.json.is_file():
        old = json.loads(args.json.read_text())
        if old["objects"] != results["objects"] or not set(map(str, args.snr)) <= set(
            map(str, old["snr_db"])
        ):
            raise SystemExit(f"--merge: {args.json} holds other objects or SNRs")
        results = bl.merge_methods(old, results)
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


def table(results: dict) -> str:
    """Markdown: mean PSNR / SSIM per method and SNR over all objects, then per family."""
    snrs = [str(s) for s in results["snr_db"]]
    n = len(results["objects"])
    lines = [
        f"\nPSNR (dB) / SSIM, mean over the {n} out-of-distribution objects\n",
        "| method | " + " | ".join(f"{float(s):g} dB" for s in snrs) + " |",
        "|---" * (len(snrs) + 1) + "|",
    ]
    for label, entry in results["methods"].items():
        cells = [f"{entry[s]['psnr'][0]:.2f} / {entry[s]['ssim'][0]:.3f}" if s in entry
                 else "not run" for s in snrs]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    families = list(dict.fromkeys(o["family"] for o in results["objects"]))
    for s in snrs:
        lines += [
            f"\nPSNR (dB) per family at {float(s):g} dB\n",
            "| method | " + " | ".join(families) + " |",
            "|---" * (len(families) + 1) + "|",
        ]
        for label, entry in results["methods"].items():
            if s not in entry:
                continue
            fam = entry[s]["families"]
            cells = [f"{fam[f]['psnr']:.2f}" if f in fam else "-" for f in families]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
