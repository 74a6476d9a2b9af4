"""Preview of the learned-method comparison (not yet the issue's 1000-digit benchmark).

Test digits 9000.. of ../shared/data/mnist-test10k through the preclinical-2d preset's default
calibration (19 x 19, signal simulated on a 5x finer grid), at the given SNRs: ART, ADMM L1+TV
and PP-MPI on the rows with calibration SNR >= 30, DERnet on its own rows; shipped parameters.

    python benchmarks/bench_learned_preview.py [--digits 40] [--snr 20 30]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from napari_mpi.metrics import nrmse, psnr, ssim
from napari_mpi.recon import reconstruct
from napari_mpi.recon.selection import select_frequencies
from napari_mpi.simulation import (
    get_preset,
    scanner_grid,
    simulate_measurement,
    simulate_system_matrix,
)
from napari_mpi.simulation.phantoms import digit_phantom

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test10k" / "mnist.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=40)
    parser.add_argument("--snr", type=float, nargs="+", default=[20.0, 30.0])
    args = parser.parse_args()
    scanner = get_preset("preclinical-2d")
    full = simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)))
    sel = select_frequencies(full, snr_threshold=30)
    rows = np.flatnonzero(full.snr >= 30)
    fine = scanner_grid(scanner, (95, 95))
    methods = [
        ("ART", sel, True, "kaczmarz", {"lam": 0.1, "sweeps": 10}),
        ("ADMM L1+TV", sel, True, "admm", {}),
        ("PP-MPI", sel, True, "ppmpi", {}),
        ("DERnet", full, False, "dernet", {}),
    ]
    for snr in args.snr:
        scores: dict[str, list] = {}
        for idx in range(9000, 9000 + args.digits):
            phantom = digit_phantom(MNIST, fine, index=idx, seed=idx)
            meas = simulate_measurement(
                full, phantom, snr, seed=idx, simulate_on_phantom_grid=True, scanner=scanner
            )
            for name, sm, selected, method, params in methods:
                u = meas.data[:, rows] if selected else meas.data
                t0 = time.perf_counter()
                img = reconstruct(sm, u, method, **params)
                dt = time.perf_counter() - t0
                t = meas.phantom
                scores.setdefault(name, []).append((psnr(img, t), ssim(img, t), nrmse(img, t), dt))
        for name, values in scores.items():
            a = np.array(values)
            ms = a[:, 3].mean() * 1e3
            print(
                f"{snr:g} dB {name:<11} PSNR {a[:, 0].mean():.2f} +- {a[:, 0].std():.2f}  "
                f"SSIM {a[:, 1].mean():.3f}  NRMSE {a[:, 2].mean():.3f}  {ms:.1f} ms"
            )


if __name__ == "__main__":
    main()
