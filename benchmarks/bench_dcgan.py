"""Benchmark: DC_GAN against deconvolution on 2D x-space images (the DC_GAN Table 1 analogue).

The scan: the default :class:`~napari_mpi.simulation.psf_mismatch.XSpaceBlur` (2 T/m, 25 nm
cores, 1 us Debye relaxation along +x at 25 kHz / 20 mT, a 20 % weaker x gradient), 101 x 101
images of 20 x 20 mm. Rows:

- native: the x-space image itself;
- Wiener and Richardson-Lucy (accelerated) with the **nominal** PSF (what a user has: the
  Langevin PSF at the specified gradient, no relaxation) and with the **true** PSF (an upper
  reference nobody has on a real scanner);
- DC_GAN (``napari_mpi.enhance(image, "dcgan")``, the shipped model or ``--model DIR``).

Tuning (validation split only, MNIST 8100+; never a test image): the Wiener balance
(1e-4 .. 10) x regulariser (Laplacian, identity) and the RL iteration count (10 .. 1600; one
run per image scored at every count)
maximise the mean PSNR on ``--val-count`` validation digits, per PSF and per SNR. DC_GAN's
checkpoint was chosen on 50 validation digits at 40 dB by its training (``val_nrmse``).

Test sets, at each ``--snr`` (dB; white Gaussian noise, rms over the image): two-tube phantoms
(1.2 mm tubes, gaps 1.0-3.4 mm; ``--tube-noise`` noise draws per gap) and the first
``--test-count`` MNIST test digits (9000+). Scores (``napari_mpi.enhance.unpaired.scores``):
PSNR and SSIM after a least-squares gain against the phantom (each method's intensity unit
removed), and for the tubes the dip ratio along the line through both (mean of 5 rows;
resolved when dip <= 8/pi^2, ``napari_mpi.enhance.tube_resolution``) and the fraction of noise
draws that resolve.

    OMP_NUM_THREADS=2 python benchmarks/bench_dcgan.py [--model DIR] [--snr 40 30]
        [--val-count 50] [--test-count 200] [--tube-noise 5] [--json benchmarks/results/dcgan.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import napari_mpi
from napari_mpi.enhance.deconvolution import richardson_lucy_array, wiener_array
from napari_mpi.enhance.tube_resolution import GAPS_MM, dip_ratio, tube_pair, tube_profile
from napari_mpi.enhance.unpaired import image_grid, make_paired, scores
from napari_mpi.image import MPIImage
from napari_mpi.simulation.psf_mismatch import XSpaceBlur

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test10k" / "mnist.npz"
RL_GRID = (10, 25, 50, 100, 200, 400, 800, 1600)
WIENER_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
REGULARISERS = ("laplacian", "identity")
ROWS = ("native", "wiener-nominal", "rl-nominal", "wiener-true", "rl-true", "dcgan")


def _rl_scores(natives, phantoms, kernel) -> dict[int, float]:
    """Mean PSNR at every RL_GRID count (one accelerated run per image)."""
    found: dict[int, list[float]] = {k: [] for k in RL_GRID}
    for native, ph in zip(natives, phantoms, strict=True):

        def keep(k, x, ph=ph):
            if k in found:
                found[k].append(scores(x, ph)["psnr"])

        richardson_lucy_array(native, kernel, max(RL_GRID), callback=keep, accelerate=True)
    return {k: float(np.mean(v)) for k, v in found.items()}


def tune(natives, phantoms, kernels) -> dict:
    """Best Wiener balance and RL iterations per PSF on validation pairs."""
    out = {}
    for name, kernel in kernels.items():
        wiener = {(b, r): float(np.mean([scores(wiener_array(n, kernel, b, r), p)["psnr"]
                                         for n, p in zip(natives, phantoms, strict=True)]))
                  for b in WIENER_GRID for r in REGULARISERS}  # fmt: skip
        rl = _rl_scores(natives, phantoms, kernel)
        out[name] = {
            "wiener_balance": max(wiener, key=wiener.get)[0],
            "wiener_regulariser": max(wiener, key=wiener.get)[1],
            "wiener_val_psnr": {f"{b:g} {r}": v for (b, r), v in wiener.items()},
            "rl_iterations": max(rl, key=rl.get),
            "rl_val_psnr": rl,
        }
        print(f"  tuned {name}: Wiener balance {out[name]['wiener_balance']:g} "
              f"{out[name]['wiener_regulariser']} "
              f"({max(wiener.values()):.2f} dB), RL {out[name]['rl_iterations']} iterations "
              f"({max(rl.values()):.2f} dB)", flush=True)  # fmt: skip
    return out


def run_rows(natives: np.ndarray, kernels: dict, tuned: dict, model: str) -> dict:
    """Every row's output on (n, H, W) natives, with seconds per image."""
    outs, seconds = {"native": natives}, {"native": 0.0}
    for name, kernel in kernels.items():
        t = tuned[name]
        t0 = time.perf_counter()
        outs[f"wiener-{name}"] = np.stack(
            [wiener_array(n, kernel, t["wiener_balance"], t["wiener_regulariser"]) for n in natives]
        )
        seconds[f"wiener-{name}"] = (time.perf_counter() - t0) / len(natives)
        t0 = time.perf_counter()
        outs[f"rl-{name}"] = np.stack(
            [richardson_lucy_array(n, kernel, t["rl_iterations"], accelerate=True)
             for n in natives]
        )  # fmt: skip
        seconds[f"rl-{name}"] = (time.perf_counter() - t0) / len(natives)
    grid = image_grid(natives.shape[-1])
    image = MPIImage(natives[:, None].astype(np.float32), grid.fov, grid.center)
    t0 = time.perf_counter()
    outs["dcgan"] = napari_mpi.enhance(image, "dcgan", model=model).data[:, 0]
    seconds["dcgan"] = (time.perf_counter() - t0) / len(natives)
    return {"outputs": outs, "seconds": seconds}


def _summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def digits_table(args, blur: XSpaceBlur, kernels: dict, tuned: dict) -> dict:
    natives, phantoms = make_paired(args.phantoms, "test", blur, args.test_count, args.seed)
    result = run_rows(natives, kernels, tuned, args.model)
    table = {}
    for row in ROWS:
        s = [scores(o, p) for o, p in zip(result["outputs"][row], phantoms, strict=True)]
        table[row] = {"psnr": _summary([x["psnr"] for x in s]),
                      "ssim": _summary([x["ssim"] for x in s]),
                      "seconds_per_image": result["seconds"][row]}  # fmt: skip
    return table


def tubes_table(args, blur: XSpaceBlur, kernels: dict, tuned: dict) -> dict:
    grid = image_grid()
    kernel = blur.true_psf(grid)[0]
    table: dict = {}
    for gap in GAPS_MM:
        ph = tube_pair(gap * 1e-3)
        natives = np.stack([
            blur.native(ph, grid, np.random.default_rng([args.seed, int(gap * 10), k]), kernel)
            for k in range(args.tube_noise)
        ])  # fmt: skip
        result = run_rows(natives, kernels, tuned, args.model)
        table[f"{gap:.1f}"] = {}
        for row in ROWS:
            outs = result["outputs"][row]
            s = [scores(o, ph) for o in outs]
            dips = [dip_ratio(tube_profile(o), gap * 1e-3) for o in outs]
            mean_profile = tube_profile(np.mean(outs, axis=0))
            table[f"{gap:.1f}"][row] = {
                "psnr": _summary([x["psnr"] for x in s]),
                "ssim": _summary([x["ssim"] for x in s]),
                "dip": _summary([d["dip"] for d in dips]),
                "resolved_fraction": float(np.mean([d["resolved"] for d in dips])),
                "resolved": bool(np.mean([d["resolved"] for d in dips]) >= 0.5),
                "profile": [float(v) for v in mean_profile / max(mean_profile.max(), 1e-12)],
            }
    return table


def print_tables(snr: float, tubes: dict, digits: dict) -> None:
    print(f"\n### {snr:g} dB\n")
    print("| gap (mm) | " + " | ".join(ROWS) + " |")
    print("|---|" + "---|" * len(ROWS))
    for gap, rows in tubes.items():
        cells = [f"{rows[r]['psnr']['mean']:.2f} / {rows[r]['ssim']['mean']:.3f} / "
                 f"{rows[r]['dip']['mean']:.2f}{' R' if rows[r]['resolved'] else ''}"
                 for r in ROWS]  # fmt: skip
        print(f"| {gap} | " + " | ".join(cells) + " |")
    cells = [f"{digits[r]['psnr']['mean']:.2f} +- {digits[r]['psnr']['std']:.2f} / "
             f"{digits[r]['ssim']['mean']:.3f}" for r in ROWS]  # fmt: skip
    print("| digits | " + " | ".join(cells) + " |")
    print("| s/image | " + " | ".join(f"{digits[r]['seconds_per_image']:.3f}" for r in ROWS)
          + " |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phantoms", default=str(MNIST), help="MNIST-style .npz")
    p.add_argument("--model", default="default", help="DC_GAN model folder")
    p.add_argument("--snr", type=float, nargs="+", default=[40.0, 30.0], help="SNRs (dB)")
    p.add_argument("--val-count", type=int, default=50)
    p.add_argument("--test-count", type=int, default=200)
    p.add_argument("--tube-noise", type=int, default=5, help="noise draws per gap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    t_start = time.perf_counter()
    grid = image_grid()
    results = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
               "model": args.model, "conditions": {}}  # fmt: skip
    for snr in args.snr:
        blur = XSpaceBlur(snr_db=snr)
        results["blur"] = {**blur.to_dict(), "snr_db": None}
        kernels = {"nominal": blur.nominal_psf(grid)[0], "true": blur.true_psf(grid)[0]}
        print(f"{snr:g} dB: tuning on {args.val_count} validation digits", flush=True)
        natives, phantoms = make_paired(args.phantoms, "val", blur, args.val_count, args.seed)
        tuned = tune(natives, phantoms, kernels)
        tubes = tubes_table(args, blur, kernels, tuned)
        digits = digits_table(args, blur, kernels, tuned)
        results["conditions"][f"{snr:g}"] = {"tuned": tuned, "tubes": tubes, "digits": digits}
        print_tables(snr, tubes, digits)
    results["seconds"] = time.perf_counter() - t_start
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
