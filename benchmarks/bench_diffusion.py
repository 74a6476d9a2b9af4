"""Benchmark: the conditional diffusion models (DCCDM and its 3D DDPM baseline) on the
VesselMNIST3D test split, the DCCDM Table 1 analogue, in the same setting as
``bench_enhance.py`` (the same pairs: seed 0, 32^3 at 1 mm, the default ``Degradation()``).

Rows, each through ``napari_mpi.enhance`` with the shipped model (or ``--model-dir DIR``
holding ``dccdm/`` and ``ddpm3d/``): the degraded input and the CNNs of DCCDM's Table 1
(``--cnns``, default EDSR-3D, 3D U-Net, ESRGAN-3D and CSDNet, shipped models, one run each
on the same volumes), then ``ddpm3d`` and ``dccdm`` with one DDIM sample (20 steps,
eta 0, seed 0), and ``dccdm`` as the mean of ``--samples`` samples on the first
``--mean-count`` test volumes (``ddpm3d-mean``: the same for ``ddpm3d``; the one-sample
rows are repeated on those volumes for a like comparison). Reported per row: PSNR / SSIM /
RMSE (mean +- std, ``napari_mpi.metrics`` as in bench_enhance), the degradation-consistency
residual (for every row the same residual, computed with the dccdm model's scan model; the
one a diffusion method reports beside it), the time per volume (one thread per process);
for the several-sample rows also the mean per-voxel standard deviation and how well it
predicts the error: the Pearson correlation of std with |x_hat - x_HR| over all voxels of
all volumes, and the mean of the per-volume correlations.

Speed (``--speed``): one 32^3 sample at the default 20 steps on 2 threads (best of 3, after a
warm-up), and a 48^3 volume in 32^3 tiles, also 2 threads.

    OMP_NUM_THREADS=1 python benchmarks/bench_diffusion.py [--test-count 382] [--jobs 2]
        [--samples 4] [--mean-count 96] [--cnns edsr3d,unet3d,esrgan3d,csdnet] [--speed]
        [--json benchmarks/results/diffusion.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_enhance import VESSELS, Learned, run_row, scores, summary

from napari_mpi.enhance import Degradation
from napari_mpi.enhance.data import make_pairs, pair_grid
from napari_mpi.image import MPIImage


class Sampler:
    """A diffusion method as a picklable function of a degraded (z, y, x) volume: returns
    (3, z, y, x): the mean, the standard deviation over the samples and (first voxel only)
    the reported consistency residual."""

    def __init__(self, method: str, model: str, samples: int = 1, steps: int = 20,
                 seed: int = 0) -> None:  # fmt: skip
        self.method, self.model, self.samples, self.steps, self.seed = (
            method, model, samples, steps, seed)  # fmt: skip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import napari_mpi as nm

        grid = pair_grid(x.shape[0])
        image = MPIImage(x, grid.fov, grid.center,
                         metadata={"degradation": Degradation().to_dict()})  # fmt: skip
        out = nm.enhance(image, self.method, model=self.model, device="cpu",
                         samples=self.samples, steps=self.steps, seed=self.seed)  # fmt: skip
        u = out.metadata["uncertainty"]
        std = u.data[0] if u is not None else np.zeros_like(out.data[0])
        extra = np.zeros_like(std)
        extra.flat[0] = out.metadata["dc_residual"][0]
        return np.stack([out.data[0], std, extra])


def uncertainty(outputs: list[np.ndarray], targets: np.ndarray) -> dict:
    """Mean std and its correlation with the absolute error (pooled and per volume)."""
    stds = np.stack([o[1] for o in outputs])
    errs = np.abs(np.stack([o[0] for o in outputs]) - targets)
    per = [float(np.corrcoef(s.ravel(), e.ravel())[0, 1]) for s, e in zip(stds, errs,
                                                                         strict=True)]  # fmt: skip
    return {"mean_std": float(stds.mean()), "mean_abs_error": float(errs.mean()),
            "pearson_pooled": float(np.corrcoef(stds.ravel(), errs.ravel())[0, 1]),
            "pearson_per_volume_mean": float(np.nanmean(per))}  # fmt: skip


def speed(model_dir: str | None) -> dict:
    """Seconds for one 32^3 dccdm sample (20 steps) and a 48^3 volume, 2 threads."""
    import torch

    import napari_mpi as nm

    torch.set_num_threads(2)
    test = make_pairs(VESSELS, "test", Degradation(), 0, 1)
    x = test.inputs[0]
    grid = pair_grid(32)
    model = str(Path(model_dir) / "dccdm") if model_dir else "default"
    meta = {"degradation": Degradation().to_dict()}
    image = MPIImage(x, grid.fov, grid.center, metadata=meta)
    nm.enhance(image, "dccdm", model=model, steps=20)  # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        nm.enhance(image, "dccdm", model=model, steps=20)
        times.append(time.perf_counter() - t0)
    big = np.pad(x, 8, mode="reflect")
    image48 = MPIImage(big, np.array(big.shape) * 1e-3, (0, 0, 0), metadata=meta)
    t0 = time.perf_counter()
    nm.enhance(image48, "dccdm", model=model, steps=20)
    return {"threads": 2, "sample_32_s": min(times), "sample_32_all_s": times,
            "volume_48_s": time.perf_counter() - t0}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--volumes", default=str(VESSELS))
    p.add_argument("--test-count", type=int, default=None, help="test volumes (default all)")
    p.add_argument("--mean-count", type=int, default=96,
                   help="test volumes of the several-sample row")  # fmt: skip
    p.add_argument("--samples", type=int, default=4, help="samples of the mean row")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1, help="processes per row")
    p.add_argument("--model-dir", default=None, help="folder with dccdm/ and ddpm3d/ models")
    p.add_argument("--cnns", default="edsr3d,unet3d,esrgan3d,csdnet",
                   help="comma-separated CNN rows (shipped models; '' for none)")  # fmt: skip
    p.add_argument("--diffusion-rows", default="ddpm3d,dccdm,dccdm-mean",
                   help="comma-separated diffusion rows: ddpm3d, dccdm, dccdm-mean, "
                        "ddpm3d-mean (the baseline's mean row, a like comparison)")  # fmt: skip
    p.add_argument("--merge", action="store_true",
                   help="add the rows to those already in --json (rows run in another call, "
                        "on the same test volumes)")  # fmt: skip
    p.add_argument("--speed", action="store_true", help="also the speed measurements")
    p.add_argument("--json")
    args = p.parse_args()

    def model(method: str) -> str:
        return str(Path(args.model_dir) / method) if args.model_dir else "default"

    test = make_pairs(args.volumes, "test", Degradation(), 0, args.test_count)
    n_mean = min(args.mean_count, len(test))
    rows, subset = {}, {}
    from napari_mpi.enhance.diffusion import _folder, dc_residual, residual_psf
    from napari_mpi.nn.checkpoint import read_card

    card = read_card(_folder("dccdm", model("dccdm")))
    grid = pair_grid(test.inputs.shape[1])
    scan = {"degradation": Degradation().to_dict()}
    psf = residual_psf(card, MPIImage(test.inputs[0], grid.fov, grid.center, metadata=scan))
    cnns = [("degraded input", None)] + [
        (name, Learned(name, "default")) for name in args.cnns.split(",") if name.strip()
    ]
    for label, fn in cnns:
        done = [(x, 0.0) for x in test.inputs] if fn is None else run_row(fn, test.inputs,
                                                                         args.jobs)  # fmt: skip
        outs = [o for o, _ in done]
        values = np.array([scores(o, t) for o, t in zip(outs, test.targets, strict=True)])
        resid = [dc_residual(o, x, card, psf) for o, x in zip(outs, test.inputs, strict=True)]
        rows[label] = {**summary(values), "seconds_per_volume": sum(s for _, s in done) / len(test),
                       "dc_residual": float(np.mean(resid))}  # fmt: skip
        subset[label] = summary(values[:n_mean])
        print(f"{label}: {rows[label]['psnr'][0]:.2f} dB, SSIM {rows[label]['ssim'][0]:.3f}",
              flush=True)  # fmt: skip
    plan = {
        "ddpm3d": ("ddpm3d (1 sample)", Sampler("ddpm3d", model("ddpm3d"), 1, args.steps),
                   len(test)),
        "dccdm": ("dccdm (1 sample)", Sampler("dccdm", model("dccdm"), 1, args.steps),
                  len(test)),
        "dccdm-mean": (f"dccdm (mean of {args.samples})",
                       Sampler("dccdm", model("dccdm"), args.samples, args.steps), n_mean),
        "ddpm3d-mean": (f"ddpm3d (mean of {args.samples})",
                        Sampler("ddpm3d", model("ddpm3d"), args.samples, args.steps), n_mean),
    }  # fmt: skip
    wanted = [r.strip() for r in args.diffusion_rows.split(",") if r.strip()]
    unknown = sorted(set(wanted) - set(plan))
    if unknown:
        p.error(f"--diffusion-rows: unknown {unknown}; choose from {sorted(plan)}")
    for label, fn, n in [plan[r] for r in wanted]:
        done = run_row(fn, test.inputs[:n], args.jobs)
        outs = [o for o, _ in done]
        values = np.array([scores(o[0], t) for o, t in zip(outs, test.targets[:n], strict=True)])
        resid = [dc_residual(o[0], x, card, psf) for o, x in zip(outs, test.inputs, strict=False)]
        reported = float(np.mean([o[2].flat[0] for o in outs]))
        rows[label] = {**summary(values), "seconds_per_volume": sum(s for _, s in done) / n,
                       "dc_residual": float(np.mean(resid)),
                       "dc_residual_reported": reported}  # fmt: skip
        subset[label] = summary(values[:n_mean])
        if fn.samples > 1:
            rows[label]["uncertainty"] = uncertainty(outs, test.targets[:n])
        print(f"{label}: {rows[label]['psnr'][0]:.2f} dB, SSIM {rows[label]['ssim'][0]:.3f} "
              f"on {n}, {rows[label]['seconds_per_volume']:.2f} s/volume", flush=True)  # fmt: skip
    if args.merge and args.json and Path(args.json).is_file():
        old = json.loads(Path(args.json).read_text())
        if old.get("test_volumes") != len(test) or old.get("mean_volumes") != n_mean:
            p.error(f"--merge: {args.json} was measured on other volumes")
        rows = {**old.get("rows", {}), **rows}
        subset = {**old.get("rows_on_mean_subset", {}), **subset}
    print(f"\nVesselMNIST3D test split, {len(test)} volumes, 32^3 at 1 mm")
    print("| method | volumes | PSNR (dB) | SSIM | RMSE (x255) | consistency residual "
          "| s / volume |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['count']} | {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} "
              f"| {r['ssim'][0]:.3f} ± {r['ssim'][1]:.3f} "
              f"| {255 * r['rmse'][0]:.2f} ± {255 * r['rmse'][1]:.2f} "
              f"| {r['dc_residual']:.3f} | {r['seconds_per_volume']:.2f} |")  # fmt: skip
    print(f"\nThe first {n_mean} test volumes:")
    for label, r in subset.items():
        print(f"| {label} | {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} "
              f"| {r['ssim'][0]:.3f} ± {r['ssim'][1]:.3f} |")  # fmt: skip
    for label, r in rows.items():
        if "uncertainty" in r:
            print(f"{label} uncertainty: {r['uncertainty']}")
    out = {"rows": rows, "rows_on_mean_subset": subset, "test_volumes": len(test),
           "mean_volumes": n_mean, "samples": args.samples, "steps": args.steps,
           "jobs": args.jobs, "cpu_count": os.cpu_count(),
           "machine": f"{platform.processor() or platform.machine()}, "
                      f"{platform.python_version()}"}  # fmt: skip
    if args.speed:
        out["speed"] = speed(args.model_dir)
    elif args.merge and args.json and Path(args.json).is_file():
        previous = json.loads(Path(args.json).read_text()).get("speed")
        if previous:
            out["speed"] = previous
        print(f"speed: {out['speed']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
