"""Benchmark: 3D enhancement on the VesselMNIST3D test split (the CSDNet Table 1 analogue).

Pairs: ../shared/data/vesselmnist3d test volumes (all 382 by default), resized to 32^3 at 1 mm,
degraded by the default ``Degradation()`` (the papers' layered scan: 3 T/m in x-y, 1.5 T/m
along z, 2 mm z steps, 25 nm cores, 30 dB). Rows: the degraded input, Richardson-Lucy and
Wiener deconvolution with the scan's PSF, the four 3D CNN baselines (``unet3d``, ``edsr3d``,
``rcan3d``, ``rrdb3d``) and CSDNet (``csdnet``), each run through ``napari_mpi.enhance`` with
its shipped model (or the folder ``--models DIR/METHOD``); their training budget (steps,
batch, volumes seen, learning rate, wall time, all from the model cards) is printed under the
table.

Tuning (never on test volumes; ``check_training_split`` guards it): the deconvolution
parameters maximise mean PSNR on the first validation volumes over a small grid: RL
iterations 100 / 200 / 400 / 800 (accelerated; one run per volume scored at every count;
``--rl-val-count`` volumes) and Wiener balance 1e-5 .. 1e-2 x padding (``--val-count``).
RL costs ~15-25 ms per iteration on one core; ``--rl-test-count`` can limit it to the first
test volumes (default: all), and a second table then gives every row on RL's volumes.
``--jobs N`` spreads the per-volume work of each row over N processes (the time per volume is
measured inside each process, one thread each).

Reported: mean +- std of PSNR (dB, peak = phantom max), SSIM and RMSE (napari_mpi.metrics;
RMSE also x255, the papers' 8-bit scale), the FWHM (mm) along x, y and z of a point (one voxel
on a layer) and across two lines (one voxel wide, along y and along x; noise-free scans),
and the mean time per volume.

    OMP_NUM_THREADS=1 python benchmarks/bench_enhance.py [--test-count 382] [--rl-test-count N]
        [--val-count 32] [--rl-val-count 16] [--jobs 2] [--models DIR] [--methods a,b]
        [--json benchmarks/results/enhance.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
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


LEARNED = ("unet3d", "edsr3d", "rcan3d", "rrdb3d", "csdnet")


class Learned:
    """A learned method as a picklable function of a degraded (z, y, x) volume (1 mm voxels,
    the default scan's card attached, so the model's checks run as for a user)."""

    def __init__(self, method: str, model: str) -> None:
        self.method, self.model = method, model

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import napari_mpi as nm

        grid = pair_grid(x.shape[0])
        image = MPIImage(x, grid.fov, grid.center,
                         metadata={"degradation": Degradation().to_dict()})  # fmt: skip
        return nm.enhance(image, self.method, model=self.model, device="cpu").data[0]


def model_of(method: str, models: str | None) -> str:
    if models is None:
        return "default"
    return str(Path(models) / method)


def budget(method: str, model: str) -> dict:
    """The training budget in a model's card."""
    from napari_mpi.enhance.learned import model_folder
    from napari_mpi.nn.checkpoint import read_card

    card = read_card(model_folder(method, model))
    t = card["training"]
    steps = int(t["steps_per_epoch"]) * int(t["epochs"])
    out = {"steps": steps, "batch": int(t["batch"]), "volumes_seen": steps * int(t["batch"]),
           "lr": float(t["lr"]), "best_step": int(t["steps"]),
           "train_seconds": float(card["metrics"]["train_seconds"]),
           "val_psnr": float(card["metrics"]["val_psnr"]), "command": card["command"]}  # fmt: skip
    if card["method"] == "csdnet":
        out["temperature"] = float(t["temperature"])
        out["teacher_steps"] = int(t["steps_per_epoch"]) * int(t["teacher_epochs"])
        out["teacher_batch_slices"] = int(t["teacher_batch"])
    return out


def methods(params: dict | None, kernel: np.ndarray, learned=(), models: str | None = None) -> dict:
    """label -> (function of a degraded volume, key of the row's test count); no
    deconvolution rows when ``params`` is None."""
    rows = {"degraded input": (lambda x: x, "all")}
    for name in learned:
        rows[name] = (Learned(name, model_of(name, models)), "all")
    if params is None:
        return rows
    rl, wi = params["rl"], params["wiener"]
    rows = {
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
    for name in learned:
        rows[name] = (Learned(name, model_of(name, models)), "all")
    return rows


def _timed(fn, inputs: np.ndarray) -> list[tuple[np.ndarray, float]]:
    import torch

    torch.set_num_threads(1)
    out = []
    for x in inputs:
        start = time.perf_counter()
        y = np.asarray(fn(x))
        out.append((y, time.perf_counter() - start))
    return out


_ROW_FN = None


def _timed_row(inputs: np.ndarray) -> list[tuple[np.ndarray, float]]:
    return _timed(_ROW_FN, inputs)


def run_row(fn, inputs: np.ndarray, jobs: int) -> list[tuple[np.ndarray, float]]:
    """``fn`` on every volume (in ``jobs`` forked processes, which inherit ``fn``), with the
    seconds each took."""
    global _ROW_FN
    if jobs <= 1 or len(inputs) < 2 * jobs:
        return _timed(fn, inputs)
    _ROW_FN = fn
    chunks = np.array_split(inputs, jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        parts = list(pool.map(_timed_row, chunks))
    return [item for part in parts for item in part]


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
    p.add_argument("--rl-test-count", type=int, default=None, help="test volumes for RL "
                   "(default all)")  # fmt: skip
    p.add_argument("--val-count", type=int, default=32, help="validation volumes (Wiener)")
    p.add_argument("--rl-val-count", type=int, default=16, help="validation volumes (RL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="processes per row")
    p.add_argument("--models", default=None, help="folder with one model folder per learned "
                   "method (default: the shipped models)")  # fmt: skip
    p.add_argument(
        "--skip-deconvolution",
        action="store_true",
        help="no Richardson-Lucy / Wiener rows (and no tuning): the input and the learned rows",
    )
    p.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="LABEL=METHOD:DIR",
        help="another model of a learned method as a row of its own (repeatable)",
    )
    p.add_argument("--methods", default=",".join(LEARNED),
                   help="learned methods to include (comma-separated; empty: none)")  # fmt: skip
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    degradation = Degradation()
    t0 = time.perf_counter()
    val = make_pairs(args.volumes, "val", degradation, args.seed, args.val_count)
    kernel = degradation.psf(val.grid)
    params, grid_scores = None, {}
    if not args.skip_deconvolution:
        params, grid_scores = tune(val, kernel, args.rl_val_count)
    tuning_s = time.perf_counter() - t0
    if params is not None:
        print(f"tuned in {tuning_s:.0f} s: {params}")
        print(f"  RL mean val PSNR per iteration count: {grid_scores['rl']}")
        print(f"  Wiener mean val PSNR: {grid_scores['wiener']}", flush=True)

    test = make_pairs(args.volumes, "test", degradation, args.seed, args.test_count)
    counts = {"all": len(test), "rl": min(args.rl_test_count or len(test), len(test))}
    learned = [m for m in args.methods.split(",") if m]
    budgets = {m: budget(m, model_of(m, args.models)) for m in learned}
    extra = {}
    for item in args.extra:
        label, _, spec = item.partition("=")
        method, _, folder = spec.partition(":")
        extra[label] = (method, folder)
        budgets[label] = budget(method, folder)
    c = test.grid.shape[0] // 2
    objects = resolution_objects(degradation)
    rows, per_volume = {}, {}
    rows_to_run = methods(params, kernel, learned, args.models)
    rows_to_run.update({label: (Learned(m, d), "all") for label, (m, d) in extra.items()})
    for label, (fn, which) in rows_to_run.items():
        n = counts[which]
        done = run_row(fn, test.inputs[:n], args.jobs)
        seconds = sum(s for _, s in done)
        values = [scores(out, t) for (out, _), t in zip(done, test.targets[:n], strict=True)]
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
        "| line FWHM x / y / z (mm) | point z/x | s / volume |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
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
            f"| {lx:.2f} / {ly:.2f} / {lz:.2f} | {pt['z'] / pt['x']:.2f} "
            f"| {r['seconds_per_volume']:.3f} |"
        )
    if budgets:
        print("\nTraining budget of the learned rows (from their cards; the same data, steps "
              "and batch for every network; each model's own learning rate):")  # fmt: skip
        print("| method | steps x batch | volumes seen | lr | best step | train s | val PSNR |")
        print("|---|---|---|---|---|---|---|")
        for name, b in budgets.items():
            extra = ""
            if "teacher_steps" in b:
                extra = f" (+ teacher {b['teacher_steps']} x {b['teacher_batch_slices']} slices)"
            print(f"| {name} | {b['steps']} x {b['batch']}{extra} | {b['volumes_seen']} "
                  f"| {b['lr']:g} | {b['best_step']} | {b['train_seconds']:.0f} "
                  f"| {b['val_psnr']:.2f} |")  # fmt: skip
    if counts["rl"] < counts["all"]:
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
            "budgets": budgets,
            "jobs": args.jobs,
            "cpu_count": os.cpu_count(),
            "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        }
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
