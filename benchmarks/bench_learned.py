"""Benchmark: classical and learned reconstruction on the 1000 test digits (DERnet Tables 2-4).

Test digits 9000-9999 of ../shared/data/mnist-test10k (never seen by any shipped model), placed
as in the DERnet paper on a 95 x 95 grid (5x finer than the calibration, so the signal is not
computed with the matrix used to reconstruct), through the ``preclinical-2d`` preset's default
calibration (19 x 19, every bin), complex Gaussian noise at 20 / 25 / 30 / 35 dB SNR.
``--signal calibration`` computes the signal as S c with the calibration itself instead, as
the DERnet paper does (the inverse crime: reconstruction meets exactly the model it inverts).

Classical parameters (and PP-MPI's) are tuned per SNR on validation digits (the first
``--val-digits`` of 8100-8999, which the shipped networks used for validation only), by grid
search on mean PSNR; the row selection (all rows, or calibration SNR >= 10 or 30) is part of
the grid, and for ADMM and PP-MPI rho and the iteration count too (early stopping
regularises; PP-MPI's counts are the DERnet paper's 10-30). DERnet and the cascaded network
use their shipped models on their own rows.

The deep image prior (``dip``) fits a network per frame (thousands of network passes each),
so it runs on the first ``--dip-digits`` test digits (default 100), at the ``--dip-snr`` SNRs
(default all), and is tuned on the first ``--dip-val-digits`` validation digits (default 10):
the row selection as above and the early stop (the iteration count, from one run recorded at
``--dip-counts``); its table rows say on how many digits they were measured.

Reported per method and SNR: mean +- std of NRMSE, PSNR and SSIM (napari_mpi.metrics, eqs
12-14 of the DERnet paper) and time per frame, both reconstructing all test frames at once
(batch) and one frame at a time (first 20 frames, DIP 1; includes the per-call overhead).

    python benchmarks/bench_learned.py [--digits 1000] [--val-digits 100] [--snr 20 25 30 35]
        [--dip-digits 100] [--only dip ...] [--model admm-net=DIR]
        [--json benchmarks/results/learned.json [--merge]]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from pathlib import Path

import numpy as np

from napari_mpi.metrics import nrmse, psnr, ssim
from napari_mpi.nn.trainers import trainables
from napari_mpi.recon import reconstruct
from napari_mpi.resample import resample
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix
from napari_mpi.simulation.noise import add_noise
from napari_mpi.simulation.phantoms import digit_phantom

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test10k" / "mnist.npz"
#: row selections tried: every row (None), or calibration SNR >= 10 / 30
THRESHOLDS = (None, 10.0, 30.0)
LAMS_ADMM = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
#: ADMM regularises through lam and through the number of iterations from zero (with rho)
ADMM_GRID = {
    "snr_threshold": THRESHOLDS,
    "lam": LAMS_ADMM,
    "rho": (0.02, 0.05, 0.15, 0.5, 1.5),
    "iterations": (50, 200),
}

#: (label, registry name, fixed parameters, grid of tuned parameters); "snr_threshold" picks
#: the rows (calibration SNR >= T, None: all), the rest are the method's own parameters.
CLASSICAL = [
    (
        "ART",
        "kaczmarz",
        {},
        {
            "snr_threshold": THRESHOLDS,
            "lam": (1e-3, 1e-2, 0.1, 1.0, 3.0),
            "sweeps": (3, 10, 30, 100),
        },
    ),
    ("ADMM L1", "admm", {"regularization": "l1"}, ADMM_GRID),
    ("ADMM TV", "admm", {"regularization": "tv"}, ADMM_GRID),
    (
        "ADMM L1+TV",
        "admm",
        {"regularization": "l1+tv"},
        {**ADMM_GRID, "alpha_tv": (0.1, 0.25, 0.5, 0.75)},
    ),
    (
        "PP-MPI",
        "ppmpi",
        {},
        {
            "snr_threshold": THRESHOLDS,
            "rho": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
            "iterations": (10, 20, 30),  # DERnet Table 1: 10-30
        },
    ),
]
#: the trained reconstruction networks, from the trainable registry (their shipped models; the
#: tuned PP-MPI above is trainable too, through its denoiser)
LEARNED = [
    (t.label or t.name, t.name, {})
    for t in trainables("reconstruct")
    if t.name not in {entry[1] for entry in CLASSICAL}
]
#: learned methods without a shipped model run only with ``--model NAME=DIR`` (none today)
NEEDS_MODEL: tuple[str, ...] = ()


def make_data(full, fine_matrix, indices, snrs, coarse_grid, fine_grid):
    """Targets (n, 19, 19) and noisy spectra {snr: (n, rows)} for the given digits; the clean
    signal from the fine phantom (``fine_matrix`` given) or as S c on the calibration grid."""
    targets, clean = [], []
    coarse_matrix = full.matrix.astype(np.complex128)
    for idx in indices:
        phantom = digit_phantom(MNIST, fine_grid, index=int(idx), seed=int(idx))
        target = resample(phantom, coarse_grid).data[0, 0]
        targets.append(target)
        if fine_matrix is None:
            clean.append(coarse_matrix @ target.reshape(-1).astype(np.complex128))
        else:
            clean.append(fine_matrix @ phantom.data[0].reshape(-1).astype(np.complex128))
    clean = np.array(clean)
    noisy = {}
    for snr in snrs:
        rows = []
        for idx, c in zip(indices, clean, strict=True):
            rng = np.random.default_rng([int(idx), int(snr * 10)])
            rows.append(add_noise(c, snr, rng)[0])
        noisy[snr] = np.array(rows, dtype=np.complex64)
    return np.array(targets), noisy


def scores(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(n, 3) NRMSE, PSNR, SSIM per frame."""
    return np.array(
        [[nrmse(a, t), psnr(a, t), ssim(a, t)] for a, t in zip(images, targets, strict=True)]
    )


_SELECTIONS: dict = {}


def run_method(full, u, name, params):
    """Images (n, 19, 19) of one method; params may hold snr_threshold (row selection)."""
    params = dict(params)
    threshold = params.pop("snr_threshold", None)
    if threshold is None:
        sm, data = full, u
    else:
        rows = np.flatnonzero(full.snr >= threshold)
        # one selected matrix per threshold, so its precomputations are cached like the full one's
        key = (id(full), threshold)
        if key not in _SELECTIONS:
            _SELECTIONS[key] = (full, full.select_rows(rows))
        sm, data = _SELECTIONS[key][1], u[:, rows]
    return reconstruct(sm, data, name, selection=None, **params).data[:, 0]


def tune(full, u_val, targets, name, fixed, grid):
    best, best_psnr = None, -np.inf
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = {**fixed, **dict(zip(keys, values, strict=True))}
        images = run_method(full, u_val, name, params)
        value = float(np.mean([psnr(a, t) for a, t in zip(images, targets, strict=True)]))
        if value > best_psnr:
            best, best_psnr = params, value
    return best, best_psnr


def timed(full, u, name, params, single: int):
    t0 = time.perf_counter()
    images = run_method(full, u, name, params)
    batch = (time.perf_counter() - t0) / u.shape[0]
    run_method(full, u[:1], name, params)  # warm caches for the one-frame timing
    t0 = time.perf_counter()
    for i in range(min(single, u.shape[0])):
        run_method(full, u[i : i + 1], name, params)
    one = (time.perf_counter() - t0) / min(single, u.shape[0])
    return images, batch, one


#: DIP's fixed parameters in the benchmark (the registry defaults but for the iteration count,
#: which is tuned) and its candidate early stops
DIP_FIXED = {"batch": 25}
DIP_COUNTS = (500, 1000, 2000, 4000, 6000)


def tune_dip(full, u_val, targets, counts, thresholds=THRESHOLDS):
    """Row selection x early stop for DIP on validation frames: (params, val PSNR)."""
    from napari_mpi.progress import run
    from napari_mpi.recon.dip import iter_dip_path

    best, best_psnr = None, -np.inf
    for threshold in thresholds:
        if threshold is None:
            sm, data = full, u_val
        else:
            rows = np.flatnonzero(full.snr >= threshold)
            sm, data = full.select_rows(rows), u_val[:, rows]
        path = run(iter_dip_path(sm, data, tuple(counts), **DIP_FIXED))
        for count, images in sorted(path.items()):
            images = images.reshape(targets.shape)
            value = float(np.mean([psnr(a, t) for a, t in zip(images, targets, strict=True)]))
            print(f"  dip val: rows >= {threshold}, {count} iterations: {value:.2f} dB", flush=True)
            if value > best_psnr:
                best = {"snr_threshold": threshold, **DIP_FIXED, "iterations": count}
                best_psnr = value
    return best, best_psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=1000)
    parser.add_argument("--val-digits", type=int, default=100)
    parser.add_argument("--snr", type=float, nargs="+", default=[20.0, 25.0, 30.0, 35.0])
    parser.add_argument("--single", type=int, default=20, help="frames timed one at a time")
    parser.add_argument(
        "--signal",
        choices=("fine", "calibration"),
        default="fine",
        help="clean signal from the phantom on a 5x finer grid (no inverse crime), or S c with "
        "the calibration itself (the DERnet paper's protocol)",
    )
    parser.add_argument("--dip-digits", type=int, default=100, help="test digits for DIP (0: skip)")
    parser.add_argument("--dip-val-digits", type=int, default=10)
    parser.add_argument(
        "--dip-snr", type=float, nargs="+", help="SNRs DIP runs at (default: every --snr)"
    )
    parser.add_argument("--dip-counts", type=int, nargs="+", default=list(DIP_COUNTS))
    parser.add_argument(
        "--dip-thresholds",
        nargs="+",
        default=["none", "10", "30"],
        help="row selections DIP is tuned over (calibration SNR >= T; none: every row)",
    )
    parser.add_argument("--only", nargs="+", help="registry names of the methods to run")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="model folder of a learned method (admm-net has no shipped model: run with one)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--merge", action="store_true", help="update the --json file's methods, keep the rest"
    )
    args = parser.parse_args()
    wanted = None if not args.only else set(args.only)
    models = dict(item.split("=", 1) for item in args.model)
    t_start = time.perf_counter()
    scanner = get_preset("preclinical-2d")
    coarse = scanner_grid(scanner, (19, 19))
    fine_grid = scanner_grid(scanner, (95, 95))
    full = simulate_system_matrix(scanner, coarse)
    fine_matrix = None
    if args.signal == "fine":
        fine = simulate_system_matrix(scanner, fine_grid)
        assert np.array_equal(fine.frequency_indices, full.frequency_indices)
        fine_matrix = fine.matrix.astype(np.complex128)
    test_idx = np.arange(9000, 9000 + args.digits)
    val_idx = np.arange(8100, 8100 + args.val_digits)
    t_test, u_test = make_data(full, fine_matrix, test_idx, args.snr, coarse, fine_grid)
    t_val, u_val = make_data(full, fine_matrix, val_idx, args.snr, coarse, fine_grid)
    print(
        f"data: {args.digits} test + {args.val_digits} validation digits "
        f"({time.perf_counter() - t_start:.0f} s)",
        flush=True,
    )
    results = {
        "snr_db": args.snr,
        "digits": args.digits,
        "val_digits": args.val_digits,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "methods": {},
    }

    def runs(name: str) -> bool:
        return wanted is None or name in wanted

    for snr in args.snr:
        for label, name, fixed, grid in CLASSICAL:
            if not runs(name):
                continue
            params, val_psnr = tune(full, u_val[snr], t_val, name, fixed, grid)
            images, batch, one = timed(full, u_test[snr], name, params, args.single)
            _record(results, label, snr, scores(images, t_test), batch, one, params, val_psnr)
        for label, name, params in LEARNED:
            if not runs(name) or (name in NEEDS_MODEL and name not in models):
                continue
            if name in models:
                params = {**params, "model": models[name]}
            images, batch, one = timed(full, u_test[snr], name, params, args.single)
            _record(results, label, snr, scores(images, t_test), batch, one, params, None)
        if args.dip_digits > 0 and runs("dip") and (args.dip_snr is None or snr in args.dip_snr):
            n_val, n = min(args.dip_val_digits, args.val_digits), min(args.dip_digits, args.digits)
            thresholds = [None if t.lower() == "none" else float(t) for t in args.dip_thresholds]
            params, val_psnr = tune_dip(
                full, u_val[snr][:n_val], t_val[:n_val], args.dip_counts, thresholds
            )
            images, batch, one = timed(full, u_test[snr][:n], "dip", params, 1)
            label = f"DIP ({n} digits)"
            _record(results, label, snr, scores(images, t_test[:n]), batch, one, params, val_psnr)
            results["methods"][label]["digits"] = n
    results["seconds"] = time.perf_counter() - t_start
    if args.json and args.merge and args.json.is_file():
        old = json.loads(args.json.read_text())
        old_snrs = [float(v) for v in old.get("snr_db", [])]
        if not set(map(float, args.snr)) <= set(old_snrs) or old.get("digits") != args.digits:
            raise SystemExit(
                f"--merge: {args.json} holds SNRs {old_snrs} on {old.get('digits')} digits; "
                f"{args.snr} on {args.digits} digits do not fit in it"
            )
        results = merge_methods(old, results, {"machine": results["machine"]})
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


def merge_methods(old: dict, results: dict, extra: dict | None = None) -> dict:
    """``old`` results with the methods (and SNRs) of ``results`` added or replaced, and the
    run listed under ``merged_runs`` (its methods, seconds and ``extra``)."""
    for label, entry in results["methods"].items():
        old["methods"].setdefault(label, {}).update(entry)
    old.setdefault("merged_runs", []).append(
        {"methods": sorted(results["methods"]), "seconds": results["seconds"], **(extra or {})}
    )
    return old


def _record(results, label, snr, s, batch, one, params, val_psnr) -> None:
    entry = results["methods"].setdefault(label, {})
    entry[str(snr)] = {
        "nrmse": [float(s[:, 0].mean()), float(s[:, 0].std())],
        "psnr": [float(s[:, 1].mean()), float(s[:, 1].std())],
        "ssim": [float(s[:, 2].mean()), float(s[:, 2].std())],
        "ms_per_frame_batch": batch * 1e3,
        "ms_per_frame_single": one * 1e3,
        "params": params,
        "val_psnr": val_psnr,
    }
    print(
        f"{snr:g} dB {label:<11} PSNR {s[:, 1].mean():.2f} +- {s[:, 1].std():.2f}  "
        f"SSIM {s[:, 2].mean():.3f}  NRMSE {s[:, 0].mean():.3f}  batch {batch * 1e3:.3f} ms  "
        f"single {one * 1e3:.2f} ms  {params}",
        flush=True,
    )


def table(results: dict) -> str:
    """Markdown tables: one per metric, methods as rows, SNRs as columns."""
    snrs = [str(s) for s in results["snr_db"]]
    lines = []
    for metric, title, digits in (
        ("psnr", "PSNR (dB)", 2),
        ("ssim", "SSIM", 3),
        ("nrmse", "NRMSE", 3),
    ):
        lines += [
            f"\n{title}, mean +- std over {results['digits']} test digits\n",
            "| method | " + " | ".join(f"{float(s):g} dB" for s in snrs) + " |",
            "|---" * (len(snrs) + 1) + "|",
        ]
        for label, entry in results["methods"].items():
            cells = [
                f"{entry[s][metric][0]:.{digits}f} +- {entry[s][metric][1]:.{digits}f}"
                if s in entry
                else "not run"
                for s in snrs
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "\nTime per frame (ms; batch of all test frames / one frame at a time), at "
        f"{float(snrs[-1]):g} dB\n",
        "| method | batch | single |",
        "|---|---|---|",
    ]
    for label, entry in results["methods"].items():
        if snrs[-1] not in entry:
            continue
        e = entry[snrs[-1]]
        lines.append(
            f"| {label} | {e['ms_per_frame_batch']:.3f} | {e['ms_per_frame_single']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
